"""The 3D zoo checkpoints (BraTS): each present id loads as `medhub/<id>` with the Hub unreachable and offline, and
still segments a subject it never trained on.

The check runs on held-out subject brats_2013_pat0004_1 (training used pat0005/pat0006 only), cropped to the
tumour's bounding box plus 12 voxels so that it takes seconds, not the minutes of a whole volume. The floors sit a
little below what the committed weights measured on exactly this crop; the cards' whole-volume numbers (both
held-out subjects) come from `medhub evaluate` and are checked against the card here only for presence.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402

from medhub.shared_data import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "model_zoo"
DATA = data_dir()
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers
SUBJECT = "brats_2013_pat0004_1"

# Measured on the crop of pat0004 (see the module docstring) with the committed float16 weights loaded as float32.
FLOORS = {
    "attention-unet-brats": {"dice_whole_tumor": 0.88, "dice_tumor_core": 0.58, "dice_enhancing_tumor": 0.71},
    # measured 0.9074 / 0.6139 / 0.7444
    "deepmedic-brats": {"dice_whole_tumor": 0.90, "dice_tumor_core": 0.74, "dice_enhancing_tumor": 0.73},
    # measured 0.9214 / 0.7750 / 0.7658
}
PRESENT = [name for name in FLOORS if (ZOO / name / "config.json").is_file()]

pytestmark = pytest.mark.skipif(DATA is None or not (DATA / "brats2015-examples" / SUBJECT).is_dir(),
                                reason="../shared/data/brats2015-examples (or MEDHUB_DATA_DIR) not found")


@pytest.fixture(scope="module")
def offline_results(tmp_path_factory):
    if not PRESENT:
        pytest.skip("no 3D zoo checkpoint present in model_zoo/")
    script = f"""
import numpy as np
from medhub.training.evaluate import label_names
from medhub.training.evaluate_brats import predict_volume, region_dice
from medhub.training.patches3d import load_subjects

OPTIONS = {{"channels": ["flair", "t1c"], "label": "label", "mask": "brainmask"}}

def check(name):
    model = medhub.MedModel.from_pretrained("medhub/" + name)
    info = model.config.weights_info or {{}}
    size = (info.get("patches") or {{}}).get("inference_size") or [96, 96, 96]
    subject = load_subjects("brats2015-examples", [{SUBJECT!r}], OPTIONS)[0]
    tumour = np.argwhere(subject.label > 0)
    low = np.maximum(tumour.min(0) - 12, 0)
    high = np.minimum(tumour.max(0) + 13, subject.label.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    pred = predict_volume(model, subject.image[(slice(None),) + box], subject.mask[box], size, 4)
    dice = region_dice(pred, subject.label[box], model.config.num_labels, label_names(model.config))
    return {{"source": str(model.hub_source), "dtype": str(next(model.parameters()).dtype), "dice": dice,
            "shape": list(pred.shape), "card": [m["name"] for m in info.get("metrics") or []],
            "licence": info.get("license"), "training_subjects": (info.get("patches") or {{}}).get("subjects")}}

for name in {PRESENT!r}:
    case(name)(lambda name=name: check(name))
"""
    return run_client(script, endpoint=UNREACHABLE, hf_home=tmp_path_factory.mktemp("zoo3d-offline"), offline=True,
                      zoo_dir=ZOO, extra_env={"MEDHUB_DATA_DIR": str(DATA)}, timeout=600)


@pytest.mark.parametrize("name", PRESENT)
def test_brats_model_offline_on_held_out_subject(offline_results, name):
    out = offline_results[name]
    assert "ok" in out, f"{name}: {out}"
    out = out["ok"]
    assert str(ZOO) in out["source"] or "zoo" in out["source"].lower(), out["source"]
    assert out["dtype"] == "torch.float32"  # stored float16, computed in float32
    for metric, floor in FLOORS[name].items():
        assert out["dice"][metric] >= floor, (name, metric, out["dice"])
    assert {"dice_whole_tumor", "dice_tumor_core", "dice_enhancing_tumor"} <= set(out["card"])
    assert out["licence"] == "cc-by-nc-sa-3.0"  # BraTS-derived weights


def test_brats_cards_name_the_split():
    for name in PRESENT:
        info = json.loads((ZOO / name / "config.json").read_text(encoding="utf-8"))["weights_info"]
        subjects = (info.get("patches") or {}).get("subjects") or {}
        assert SUBJECT in subjects.get("test", []) and SUBJECT not in subjects.get("train", []), (name, subjects)
        card = (ZOO / name / "README.md").read_text(encoding="utf-8")
        assert "NOT FOR CLINICAL" in card.upper() or "not for clinical" in card.lower()
