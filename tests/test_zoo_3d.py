"""The 3D zoo checkpoints (BraTS): what users run is what the cards measured.

`medhub predict medhub/<id> <subject folder>...` - offline, the Hub unreachable, served by the local zoo - on the
two held-out subjects (pat0003, pat0004; training used pat0005/pat0006 only) writes label volumes whose BraTS
region Dice, computed here against the subjects' label maps, equals the card's (whole tumour, core, enhancing,
per subject and their mean, within 0.01). The subject folders are the shared data's, as a user has them: FLAIR,
T1c, the brain mask, the labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402

from medhub.data.recipe_data import BRATS_SPLITS  # noqa: E402
from medhub.shared_data import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "model_zoo"
DATA = data_dir()
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers
SUBJECTS = BRATS_SPLITS["test"]
REGIONS = ("whole_tumor", "tumor_core", "enhancing_tumor")
PRESENT = [name for name in ("attention-unet-brats", "deepmedic-brats") if (ZOO / name / "config.json").is_file()]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(DATA is None or not all((DATA / "brats2015-examples" / s).is_dir() for s in SUBJECTS),
                       reason="../shared/data/brats2015-examples (or MEDHUB_DATA_DIR) not found"),
]


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    if not PRESENT:
        pytest.skip("no 3D zoo checkpoint present in model_zoo/")
    out = tmp_path_factory.mktemp("zoo3d-predict")
    subjects = [str(DATA / "brats2015-examples" / s) for s in SUBJECTS]
    script = f"""
import nibabel as np_nib, numpy as np
from medhub.cli import main
from medhub.evaluation import region_dice

def check(name):
    target = {str(out)!r} + "/" + name
    code = main(["predict", "medhub/" + name, *{subjects!r}, "--out", target, "--no-progress"])
    model = medhub.MedModel.from_pretrained("medhub/" + name)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    dice = {{}}
    for folder in {subjects!r}:
        subject = folder.rsplit("/", 1)[-1]
        pred = np.asarray(np_nib.load(target + "/" + subject + "_seg.nii.gz").dataobj).astype(np.int64)
        truth = np.rint(np.asarray(np_nib.load(folder + "/OTMultiClass.nii.gz").dataobj)).astype(np.int64)
        dice[subject] = region_dice(pred, truth, model.config.num_labels, names)
    return {{"code": code, "source": str(model.hub_source), "dice": dice,
            "card": {{m["name"]: m["value"] for m in model.config.weights_info["metrics"]}},
            "licence": model.config.weights_info.get("license")}}

for name in {PRESENT!r}:
    case(name)(lambda name=name: check(name))
"""
    return run_client(script, endpoint=UNREACHABLE, hf_home=tmp_path_factory.mktemp("zoo3d-offline"), offline=True,
                      zoo_dir=ZOO, extra_env={"MEDHUB_DATA_DIR": str(DATA)}, timeout=900)


@pytest.mark.parametrize("name", PRESENT)
def test_medhub_predict_reproduces_the_cards_dice(predicted, name):
    out = predicted[name]
    assert "ok" in out, f"{name}: {out}"
    out = out["ok"]
    assert out["code"] == 0 and "zoo" in out["source"].lower()
    card = out["card"]
    for region in REGIONS:
        for subject in SUBJECTS:
            measured = out["dice"][subject][f"dice_{region}"]
            assert measured == pytest.approx(card[f"dice_{region}/{subject}"], abs=0.01), (name, region, subject)
        mean = sum(out["dice"][s][f"dice_{region}"] for s in SUBJECTS) / len(SUBJECTS)
        assert mean == pytest.approx(card[f"dice_{region}"], abs=0.01), (name, region)
    assert out["licence"] == "cc-by-nc-sa-3.0"  # BraTS-derived weights


def test_brats_cards_name_the_split_and_the_preprocessing():
    for name in PRESENT:
        info = json.loads((ZOO / name / "config.json").read_text(encoding="utf-8"))["weights_info"]
        subjects = (info.get("patches") or {}).get("subjects") or {}
        assert set(SUBJECTS) <= set(subjects.get("test", [])) and not set(SUBJECTS) & set(subjects.get("train", []))
        processor = json.loads((ZOO / name / "preprocessor_config.json").read_text(encoding="utf-8"))
        # the volumes as training saw them: stored orientation, no re-normalisation, the brain mask as the ROI
        assert processor["orientation"] == "LPS" and processor["intensity_normalization"] == "none"
        assert processor["mask_name"] == "brainmask"
        card = (ZOO / name / "README.md").read_text(encoding="utf-8")
        assert "not for clinical" in card.lower()
