"""The dsb2018-nuclei loader (medhub.data.dsb2018): image types by the documented rule, the split by experiment
group, and the rows (RGB image, 16-bit instance labels, the 3-class target)."""

from __future__ import annotations

import numpy as np
import pytest

from medhub.data.dsb2018 import image_type, split_groups, target_mask


def test_image_type_rule():
    dark = np.zeros((32, 32, 3), np.uint8)
    dark[8:16, 8:16] = 200  # bright nucleus on black
    assert image_type(dark) == "fluorescence" and image_type(dark[..., 0]) == "fluorescence"
    light = np.full((32, 32, 3), 230, np.uint8)
    light[8:16, 8:16] = 90  # grey nucleus on white
    assert image_type(light) == "brightfield"
    stained = light.copy()
    stained[..., 1] = 150  # pink/purple background: colourful
    assert image_type(stained) == "histology"


def test_three_class_target():
    labels = np.zeros((6, 8), np.uint16)
    labels[1:5, 1:4], labels[1:5, 4:7] = 1, 2  # two touching 4x3 nuclei
    classes = target_mask(labels, "three_class")
    assert classes[2].tolist() == [0, 2, 1, 2, 2, 1, 2, 0]  # each nucleus keeps its own inner boundary
    assert target_mask(labels, "foreground").max() == 1


@pytest.mark.shared_data
def test_split_keeps_groups_together_and_reports_counts(shared_data):
    from medhub.data import load
    from medhub.data.dsb2018 import catalogue, split_counts

    folder = shared_data / "dsb2018-nuclei"
    records = catalogue(str(folder))
    split, by_image = split_groups(records)
    assert by_image == ["brightfield"]  # one 1024x1024 set: split by image
    for group in {r["group"] for r in records if r["image_type"] != "brightfield"}:
        assert len({split[r["id"]] for r in records if r["group"] == group}) == 1
    assert split_counts(folder) == {"train": {"fluorescence": 424, "brightfield": 13, "histology": 84},
                                    "validation": {"fluorescence": 117, "brightfield": 3, "histology": 23}}
    assert split_groups(records, seed=0) == (split, by_image)  # deterministic

    rows = load("dsb2018-nuclei", "validation", data_dir=shared_data, mask="three_class")
    assert len(rows) == 143 and "one group each" in rows.info.description
    row = rows[0]
    label = np.asarray(row["label"])
    assert row["image"].mode == "RGB" and label.dtype == np.uint16 and label.shape == (row["height"], row["width"])
    np.testing.assert_array_equal(np.asarray(row["mask"]), target_mask(label, "three_class"))
    assert rows.features["image_type"].int2str(row["image_type"]) == image_type(np.asarray(row["image"]))
