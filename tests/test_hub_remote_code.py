"""Zoo repos load with plain transformers (no medhub) from a real HF-compatible server, and medhub never runs them.

The zoo folders (with the remote code `medhub zoo refresh` generated) are served by olah on 127.0.0.1; a
virtualenv with torch, transformers, safetensors, huggingface_hub, numpy and pillow but no medhub (and none of
medhub's own dependencies: pydicom, scipy, nibabel, ...; see tests/plain_venv.py) loads them through AutoConfig,
AutoModel, the task's Auto class, AutoImageProcessor and `pipeline(..., trust_remote_code=True)`, on real
images (a chest X-ray, an ISBI 2012 EM section) and a real BraTS volume crop; the outputs match medhub's
within 1e-5. A classifier's pipeline (the repo's generated copy of medhub's) gives `medhub.pipeline`'s calibrated
scores on a PNG and a JPEG path; a DICOM path names pydicom and medhub.pipeline, and with pydicom installed (a
second virtualenv) gives medhub's scores, MONOCHROME1 included. By default three models (MEDHUB_HUB_REPOS_ALL=1:
the whole zoo).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_servers import folder_files, make_repo, run_client
from PIL import Image
from plain_venv import plain_transformers_venv

import medhub
from medhub.shared_data import data_dir

ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
DATA = data_dir()
DEFAULT = ["chexnet-pneumonia", "unet-isbi2012", "attention-unet-brats"]
ALL = sorted(p.name for p in ZOO.iterdir() if (p / "config.json").is_file())
IDS = ALL if os.environ.get("MEDHUB_HUB_REPOS_ALL") == "1" else DEFAULT
TOLERANCE = 1e-5

pytestmark = pytest.mark.skipif(DATA is None, reason="../shared/data (or MEDHUB_DATA_DIR) not found: no real data")

PLAIN_SCRIPT = r"""
import json, sys
import numpy as np, torch
from PIL import Image
import transformers
from transformers import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification,
                          AutoModelForSemanticSegmentation, pipeline)
assert "medhub" not in sys.modules
cases, out = json.loads(sys.argv[1]), sys.argv[2]
results = {}
for repo, case in cases.items():
    r = results[repo] = {}
    config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
    r["config"] = type(config).__name__
    task = AutoModelForImageClassification if case["task"] == "image-classification" else \
        AutoModelForSemanticSegmentation
    model = task.from_pretrained(repo, trust_remote_code=True).eval()
    r["model"], r["dtype"] = type(model).__name__, str(model.dtype)
    r["backbone"] = type(AutoModel.from_pretrained(repo, trust_remote_code=True)).__name__
    processor = AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)
    r["processor"] = type(processor).__name__
    pixel_values = torch.from_numpy(np.load(case["input"]))
    if case.get("image"):
        pixel_values = processor(Image.open(case["image"]), return_tensors="pt")["pixel_values"]
        np.save(case["input"] + ".plain-processed.npy", pixel_values.numpy())
    with torch.no_grad():
        logits = model(pixel_values=pixel_values).logits
    np.save(case["input"] + ".plain-logits.npy", logits.numpy())
    if case["task"] == "image-classification":
        r["pipeline"] = classify_files(repo, case["samples"])
modules = sorted(m for m in sys.modules if m.split(".")[0] in ("medhub", "pydicom", "scipy", "nibabel"))
results["_forbidden_modules"] = modules
open(out, "w").write(json.dumps(results))
"""
# pipeline(..., trust_remote_code=True) on files: {path: scores or the error}
CLASSIFY = r"""
def classify_files(repo, paths):
    from transformers import pipeline
    classify = pipeline("image-classification", model=repo, trust_remote_code=True)
    results = {"_class": type(classify).__name__}
    for path in paths:
        try:
            results[path] = {r["label"]: r["score"] for r in classify(path)}
        except Exception as err:
            results[path] = f"{type(err).__name__}: {err}"
    return results
"""
PLAIN_SCRIPT = CLASSIFY + PLAIN_SCRIPT
# The same on the DICOM samples in a virtualenv with pydicom (no medhub).
PYDICOM_SCRIPT = CLASSIFY + r"""
import json, sys
assert "medhub" not in sys.modules
repo, paths, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
results = classify_files(repo, paths)
results["_medhub_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "medhub")
open(out, "w").write(json.dumps(results))
"""
SAMPLES = ["00000001_000.png", "16747_3_1.jpg"]
DICOM_SAMPLES = ["1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm", "Fake_MONOHR1.dcm"]


def _case_inputs(model_id: str, model, work: Path) -> dict:
    """The input medhub and plain transformers both run: a real image (processed by each) or a volume crop."""
    case = {"task": model.pipeline_tag, "input": str(work / f"{model_id}.npy")}
    if model.spatial_dims == 3:
        subject = next(p for p in sorted((DATA / "brats2015-examples").iterdir()) if p.is_dir())
        channels = {name: str(next(subject.glob(f"{name.capitalize()}*.nii.gz")))
                    for name in model.config.channel_names}
        processed = model.image_processor(channels)["pixel_values"]
        centre = [s // 2 for s in processed.shape[2:]]
        size = [max(48, s) for s in model.example_input_size()]  # DeepMedic's forward takes 101^3 at the least
        crop = processed[(..., *[slice(c - s // 2, c - s // 2 + s) for c, s in zip(centre, size)])]
        np.save(case["input"], crop.numpy())
        return case
    if model.pipeline_tag == "image-classification":
        image = DATA / "chest-xray-samples" / "00000001_000.png"
        case["samples"] = [str(DATA / "chest-xray-samples" / name) for name in SAMPLES + DICOM_SAMPLES]
    else:
        image = work / "isbi-crop.png"
        Image.open(DATA / "isbi2012-em" / "train" / "image" / "0.png").crop((0, 0, 192, 192)).save(image)
    case["image"] = str(image)
    np.save(case["input"], model.image_processor(Image.open(image), return_tensors="pt")["pixel_values"].numpy())
    return case


@pytest.fixture(scope="module")
def served(olah_server, tmp_path_factory):
    """Every zoo id in IDS on olah as medhub/<id>; medhub's reference inputs and logits for each."""
    work = tmp_path_factory.mktemp("remote-code")
    cases, reference = {}, {}
    for model_id in IDS:
        make_repo(olah_server.mirrors, f"medhub/{model_id}", [folder_files(ZOO / model_id)])
        model = medhub.MedModel.from_pretrained(str(ZOO / model_id))
        case = _case_inputs(model_id, model, work)
        with torch.no_grad():
            reference[model_id] = model(pixel_values=torch.from_numpy(np.load(case["input"]))).logits.numpy()
        cases[f"medhub/{model_id}"] = case
    return work, cases, reference


@pytest.fixture(scope="module")
def plain(served, write_endpoint, tmp_path_factory):
    """Run PLAIN_SCRIPT in the virtualenv without medhub against olah (through the test endpoint, which answers a
    missing file with the Hub's 404 where olah says 401); its results."""
    work, cases, _ = served
    python = plain_transformers_venv(tmp_path_factory.mktemp("plain-venv"))
    return _run_plain(python, PLAIN_SCRIPT, [json.dumps(cases)], work, write_endpoint.url)


@pytest.fixture(scope="module")
def plain_pydicom(served, write_endpoint, tmp_path_factory):
    """PYDICOM_SCRIPT on chexnet's repo in a virtualenv without medhub but with pydicom; its results."""
    work = served[0]
    python = plain_transformers_venv(tmp_path_factory.mktemp("plain-pydicom-venv"), also=("pydicom",))
    paths = [str(DATA / "chest-xray-samples" / name) for name in DICOM_SAMPLES]
    return _run_plain(python, PYDICOM_SCRIPT, ["medhub/chexnet-pneumonia", json.dumps(paths)], work,
                      write_endpoint.url)


def _run_plain(python: Path, script: str, args: list[str], work: Path, endpoint: str) -> dict:
    """Run `script` with `args` and an output file in the plain virtualenv against the test Hub endpoint."""
    out = work / f"plain-results-{python.parents[2].name}.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "MEDHUB_", "PYTHON")) and "PROXY" not in k.upper()}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost"})
    done = subprocess.run([str(python), "-c", script, *args, str(out)], env=env, cwd=work, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-12000:]
    return json.loads(out.read_text())


def test_plain_transformers_has_no_medhub(plain):
    assert plain["_forbidden_modules"] == []


@pytest.mark.parametrize("model_id", IDS)
def test_auto_classes_load_the_zoo_model_in_float32(plain, model_id):
    model = medhub.MedModel.from_pretrained(str(ZOO / model_id))
    got = plain[f"medhub/{model_id}"]
    assert got["config"] == type(model.config).__name__
    assert got["model"] == type(model).__name__
    assert got["backbone"] == type(model).__name__.replace("ForImageClassification", "Model").replace(
        "ForSegmentation", "Model")
    assert got["processor"] == type(model.image_processor).__name__
    assert got["dtype"] == "torch.float32"  # float16 on disk (storage_dtype), float32 in every path


@pytest.mark.parametrize("model_id", IDS)
def test_outputs_match_medhub(served, plain, model_id):
    work, cases, reference = served
    case = cases[f"medhub/{model_id}"]
    if "image" in case:  # the remote processor gives medhub's pixel values for the same image
        medhub_pixels = np.load(case["input"])
        plain_pixels = np.load(case["input"] + ".plain-processed.npy")
        assert np.abs(plain_pixels - medhub_pixels).max() <= TOLERANCE
    logits = np.load(case["input"] + ".plain-logits.npy")
    assert logits.shape == reference[model_id].shape
    difference = float(np.abs(logits - reference[model_id]).max())
    print(f"{model_id}: plain transformers vs medhub, logits {logits.shape}: max abs diff {difference:.3g}")
    assert difference <= TOLERANCE


CLASSIFIERS = [i for i in IDS if i in ("chexnet-pneumonia", "vgg16-pneumonia", "resnet18-pneumonia")]


@pytest.mark.parametrize("model_id", CLASSIFIERS)
def test_transformers_pipeline_scores_match_medhub_pipeline(served, plain, model_id):
    """The repo's pipeline gives medhub.pipeline's calibrated scores on PNG and JPEG paths; without pydicom a DICOM
    path is an error naming pydicom and medhub.pipeline."""
    got = plain[f"medhub/{model_id}"]["pipeline"]
    assert got["_class"] == "MedImageClassificationPipeline"
    classify = medhub.pipeline("image-classification", str(ZOO / model_id))
    for path in served[1][f"medhub/{model_id}"]["samples"]:
        if path.endswith(".dcm"):
            assert "pydicom" in got[path] and "medhub.pipeline" in got[path], got[path]
            continue
        expected = {r["label"]: r["score"] for r in classify(path)}
        assert got[path].keys() == expected.keys()
        assert max(abs(got[path][k] - expected[k]) for k in expected) <= TOLERANCE, (path, got[path], expected)


@pytest.mark.skipif("chexnet-pneumonia" not in IDS, reason="chexnet-pneumonia not served")
def test_transformers_pipeline_reads_dicom_with_pydicom(plain_pydicom):
    """With pydicom (still no medhub) the repo's pipeline reads a DICOM, and its MONOCHROME1 variant, as medhub."""
    assert plain_pydicom["_medhub_modules"] == []
    classify = medhub.pipeline("image-classification", str(ZOO / "chexnet-pneumonia"))
    for name in DICOM_SAMPLES:
        path = str(DATA / "chest-xray-samples" / name)
        expected = {r["label"]: r["score"] for r in classify(path)}
        got = plain_pydicom[path]
        assert isinstance(got, dict), got
        assert max(abs(got[k] - expected[k]) for k in expected) <= TOLERANCE, (name, got, expected)


MALICIOUS = """import pathlib
pathlib.Path({marker!r}).write_text("the repo's code ran")
raise SystemExit("the repo's code ran")
"""


def test_medhub_never_runs_the_repo_code(olah_server, tmp_path):
    """A repo whose code files were all replaced by a payload loads through medhub (from a folder and from the
    Hub, where medhub does not even download them) and the payload never runs."""
    marker = tmp_path / "ran"
    files = folder_files(ZOO / "unet-isbi2012")
    files.update({name: MALICIOUS.format(marker=str(marker)).encode() for name in files if name.endswith(".py")})
    make_repo(olah_server.mirrors, "medhub-evil/unet", [files])
    folder = tmp_path / "evil"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    reference = medhub.MedModel.from_pretrained(str(ZOO / "unet-isbi2012"))
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=x).logits
        local = medhub.MedModel.from_pretrained(str(folder))
        assert torch.equal(local(pixel_values=x).logits, expected)
    results = run_client("""
@case("hub")
def _():
    model = medhub.MedModel.from_pretrained("medhub-evil/unet")
    return {"class": type(model).__module__, "source": model.hub_source}
""", endpoint=olah_server.url, hf_home=tmp_path / "hf")
    outcome = results["hub"]
    assert "ok" in outcome, outcome
    assert outcome["ok"]["class"] == "medhub.models.unet.modeling_unet"
    assert outcome["ok"]["source"] == f"Hugging Face Hub ({olah_server.url})"
    assert not list((tmp_path / "hf").rglob("*.py"))  # not even downloaded
    assert not marker.exists()
