"""`transformers.pipeline("image-classification", ...)` with medhub installed runs medhub models as
`medhub.pipeline` does (medhub.classification_pipeline), on real chest X-rays: PNG, JPEG, a DICOM and its
MONOCHROME1 variant; from a zoo folder, a freshly saved folder and a model instance; without ever asking whether
to run the repo's code. Other models run as in transformers.
"""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import pytest
import transformers
from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetForImageClassification
from transformers.pipelines.image_classification import ImageClassificationPipeline

import medhub
from medhub.classification_pipeline import MedImageClassificationPipeline
from medhub.shared_data import data_dir

ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
DATA = data_dir()
SAMPLES = ["00000001_000.png", "16747_3_1.jpg", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
           "Fake_MONOHR1.dcm"]
TOLERANCE = 1e-5
# One classifier by default (the mechanism is the same for every family); MEDHUB_HUB_REPOS_ALL=1: all three.
CLASSIFIERS = (["chexnet-pneumonia", "resnet18-pneumonia", "vgg16-pneumonia"]
               if os.environ.get("MEDHUB_HUB_REPOS_ALL") == "1" else ["chexnet-pneumonia"])

pytestmark = pytest.mark.skipif(DATA is None, reason="../shared/data (or MEDHUB_DATA_DIR) not found: no real data")


@pytest.fixture
def no_prompt(monkeypatch):
    """Fails the test if anything asks a question on stdin (transformers' "Do you wish to run the custom code?")."""
    asked = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or "n")
    yield
    assert asked == []


def _scores(results) -> dict[str, float]:
    return {r["label"]: r["score"] for r in results}


@pytest.mark.parametrize("model_id", CLASSIFIERS)
def test_transformers_pipeline_gives_medhub_pipeline_scores(model_id, tmp_path, no_prompt):
    folder = ZOO / model_id
    saved = tmp_path / "saved"
    medhub.MedModel.from_pretrained(str(folder)).save_pretrained(saved)
    assert "custom_pipelines" in json.loads((saved / "config.json").read_text())  # for plain transformers
    reference = medhub.pipeline("image-classification", str(folder))
    pipelines = {
        "zoo folder": transformers.pipeline("image-classification", model=str(folder)),
        "saved folder": transformers.pipeline("image-classification", model=str(saved)),
        "instance": transformers.pipeline("image-classification", model=medhub.MedModel.from_pretrained(str(folder))),
    }
    for name, classify in pipelines.items():
        assert type(classify) is MedImageClassificationPipeline, name
        assert classify.video_processor is None
    for sample in SAMPLES:
        path = str(DATA / "chest-xray-samples" / sample)
        expected = _scores(reference(path))
        for name, classify in pipelines.items():
            if name == "saved folder" and sample != "Fake_MONOHR1.dcm":
                continue  # the zoo folder's model, saved again: one file shows the saved repo loads alike
            got = _scores(classify(path))
            assert got.keys() == expected.keys()
            assert max(abs(got[k] - expected[k]) for k in expected) <= TOLERANCE, (name, sample, got, expected)


def test_trust_remote_code_still_runs_medhub_classes(no_prompt):
    """trust_remote_code=True with medhub installed: transformers prefers the registered classes, so no repo code."""
    folder = ZOO / "chexnet-pneumonia"
    classify = transformers.pipeline("image-classification", model=str(folder), trust_remote_code=True)
    for part in (classify, classify.model, classify.image_processor, classify.model.config):
        assert type(part).__module__.startswith("medhub."), type(part)
    path = str(DATA / "chest-xray-samples" / "Fake_MONOHR1.dcm")
    expected = _scores(medhub.pipeline("image-classification", str(folder))(path))
    got = _scores(classify(path))
    assert max(abs(got[k] - expected[k]) for k in expected) <= TOLERANCE


def test_medhub_config_hides_the_repo_pipeline_but_keeps_it_on_save(tmp_path):
    """With medhub imported its config reports no custom pipeline (transformers would otherwise refuse the task
    without trust_remote_code, or run the repo's copy); saving keeps config.json's entry for plain transformers."""
    folder = ZOO / "chexnet-pneumonia"
    declared = json.loads((folder / "config.json").read_text())["custom_pipelines"]
    config = transformers.AutoConfig.from_pretrained(str(folder))
    assert config.custom_pipelines == {}
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["custom_pipelines"] == declared


def test_other_models_run_as_in_transformers():
    torch_config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 8], depths=[1, 1], num_labels=3)
    model = ResNetForImageClassification(torch_config).eval()
    processor = ConvNextImageProcessorPil(size={"shortest_edge": 32})
    path = str(DATA / "chest-xray-samples" / "16747_3_1.jpg")
    ours = transformers.pipeline("image-classification", model=model, image_processor=processor, device="cpu")
    theirs = transformers.pipeline("image-classification", model=model, image_processor=processor, device="cpu",
                                   pipeline_class=ImageClassificationPipeline)
    assert _scores(ours(path)) == _scores(theirs(path))
    with pytest.raises(ValueError, match="Impossible to guess which image processor to use"):
        transformers.pipeline("image-classification", model=model)
