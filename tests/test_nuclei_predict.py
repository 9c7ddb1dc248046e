"""`medhub predict` and `medhub evaluate` for weights whose instances are nuclei (weights_info.instances method
nuclei_watershed): the 16-bit instance PNG, the outline overlay, the per-nucleus CSV, and the DSB / F1 table per
image type - with a tiny U-Net (random weights) saved by save_pretrained, on dsb2018-nuclei images."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import medhub
from medhub import metrics as M
from medhub.models.unet import UNetConfig
from medhub.processing import RadiographImageProcessor

pytestmark = pytest.mark.shared_data
IMAGE = "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552"  # fluorescence, 256x256


@pytest.fixture(scope="module")
def nuclei_unet(tmp_path_factory):
    torch.manual_seed(0)
    config = UNetConfig(in_channels=1, num_labels=3, base_width=4, depth=2, padding="same", norm="batch",
                        id2label={0: "background", 1: "nucleus", 2: "boundary"})
    model = medhub.MedModel.from_config(config).eval()
    model.config.weights_info = {
        "instances": {"method": "nuclei_watershed", "foreground_threshold": 0.3, "seed_threshold": 0.3,
                      "min_size": 4, "smoothing": 1.0},
        "data_options": {"mask": "three_class"},
        "inference": {"roi_size": [96, 96], "overlap": 0.25, "batch_size": 4}}
    model.image_processor = RadiographImageProcessor(num_channels=1, do_resize=False, do_normalize=True,
                                                     image_mean=[0.5], image_std=[0.25])
    folder = tmp_path_factory.mktemp("nuclei") / "unet"
    model.save_pretrained(folder)
    return folder


def test_predict_writes_instances_overlay_and_csv(shared_data, nuclei_unet, tmp_path):
    from PIL import Image

    from medhub.predict import predict_paths

    image = shared_data / "dsb2018-nuclei" / "images" / f"{IMAGE}.png"
    report = predict_paths(str(nuclei_unet), [image], tmp_path, progress=False)
    assert report.ok, report.failed
    names = sorted(p.name for p in tmp_path.glob(f"{IMAGE}_*"))
    assert names == [f"{IMAGE}_{s}" for s in ("instances.csv", "instances.png", "instances_overlay.png", "mask.png",
                                              "overlay.png")]
    instances = np.asarray(Image.open(tmp_path / f"{IMAGE}_instances.png"))
    overlay = np.asarray(Image.open(tmp_path / f"{IMAGE}_instances_overlay.png"))
    assert instances.dtype == np.uint16 and instances.shape == (256, 256) and overlay.shape == (256, 256, 3)
    with open(tmp_path / f"{IMAGE}_instances.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["label", "area", "centroid_y", "centroid_x", "mean_intensity"]
    counts = np.bincount(instances.ravel())
    assert len(rows) == int(instances.max()) >= 1
    assert {int(r["label"]): int(r["area"]) for r in rows} == {k: int(counts[k]) for k in range(1, len(counts))}
    first = instances == int(rows[0]["label"])
    ys, xs = np.nonzero(first)
    grey = np.asarray(Image.open(image).convert("L"), dtype=np.float64)
    assert float(rows[0]["centroid_y"]) == pytest.approx(ys.mean(), abs=1e-3)
    assert float(rows[0]["centroid_x"]) == pytest.approx(xs.mean(), abs=1e-3)
    assert float(rows[0]["mean_intensity"]) == pytest.approx(grey[first].mean(), abs=1.0)  # BT.601 vs PIL's grey
    outline = np.any(overlay != np.asarray(Image.open(image).convert("L"))[..., None], axis=2)
    assert outline.any() and not outline[instances == 0].any()  # coloured outlines lie on the nuclei


def test_evaluate_reports_dsb_per_image_type(shared_data, nuclei_unet):
    from medhub.commands.evaluate import evaluate_command
    from medhub.data import load
    from medhub.evaluation import format_table
    from medhub.predict.inference import segment_image

    result = evaluate_command(str(nuclei_unet), "dsb2018-nuclei", split="validation", limit=3)
    rows = load("dsb2018-nuclei", "validation").select(range(3))
    model = medhub.MedModel.from_pretrained(str(nuclei_unet)).eval()
    scores = [M.instance_scores(segment_image(model, row["image"]).instances, np.asarray(row["label"]))
              for row in rows]
    types = [rows.features["image_type"].int2str(t) for t in rows["image_type"]]
    expected = M.mean_instance_scores(scores, types)
    for key in ("dsb_score", "f1_50", "ap_50", f"dsb_score/{types[0]}"):
        assert result.metrics[key] == pytest.approx(expected[key], abs=1e-12)
    assert {"dice_nucleus", "dice_boundary"} <= set(result.metrics) and "pixel_error" not in result.metrics
    table = format_table(result)
    assert "image type" in table and "overall" in table and types[0] in table
    kinds = {r["name"]: r["type"] for r in result.card_metrics()}
    assert kinds["dsb_score"] == "dsb_score" and kinds["f1_50"] == "f1"
    # without the class-map option only the instance labels are there: instance measures, no Dice
    from medhub.evaluation import evaluate_model

    plain = evaluate_model(model, {"name": "dsb2018-nuclei"}, "validation", limit=3)
    assert plain.metrics["dsb_score"] == pytest.approx(expected["dsb_score"], abs=1e-12)
    assert not any(k.startswith("dice") for k in plain.metrics) and plain.num_examples == 3
