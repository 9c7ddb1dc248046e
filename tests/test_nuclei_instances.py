"""Nucleus instances from a probability map (medhub.inference.nuclei): touching nuclei come apart, on drawn discs
and on dsb2018-nuclei ground truth turned into probability maps (the best a network could give)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medhub import metrics as M
from medhub.errors import ConfigError, InputError
from medhub.inference import instance_method, instances_from_probabilities, nuclei_instances

# validation images with many touching nuclei: (fluorescence 696x520, histology 320x256, bright-field 1024x1024)
TOUCHING = {"fluorescence": "0ea221716cf13710214dcd331a61cea48308c3940df1d28cfc7fd817c83714e1",
            "histology": "a31deaf0ac279d5f34fb2eca80cc2abce6ef30bd64e7aca40efe4b2ba8e9ad3d",
            "brightfield": "8f94a80b95a881d0efdec36affc915dca9609f4cba8134c4a91b219d418778aa"}


def _two_touching_discs() -> np.ndarray:
    yy, xx = np.mgrid[:40, :60]
    labels = np.zeros((40, 60), np.int32)
    labels[(yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = 1
    labels[(yy - 20) ** 2 + (xx - 37) ** 2 <= 100] = 2  # overlaps disc 1 by a few columns: one blob
    labels[2:4, 2:4] = 3  # a 4-pixel speck
    return labels


def test_touching_discs_are_separated_and_specks_removed():
    truth = _two_touching_discs()
    foreground = (truth > 0).astype(np.float64)
    assert ndimage.label(truth[:, :] > 0)[0].max() == 2  # connected components: the discs are one object
    found = nuclei_instances(foreground, min_size=10)
    assert found.max() == 2 and M.instance_scores(found, np.where(truth == 3, 0, truth)).f1() == 1.0
    assert nuclei_instances(foreground, min_size=1, smoothing=0.0).max() == 3  # smoothing 1 px erases the speck
    assert nuclei_instances(np.zeros((8, 8))).max() == 0


def test_three_class_output_and_dispatch():
    from medhub.data.dsb2018 import target_mask

    truth = np.where(_two_touching_discs() == 3, 0, _two_touching_discs())
    classes = target_mask(truth, "three_class")
    probs = np.stack([classes == k for k in range(3)]).astype(np.float64)
    method, options = instance_method({"method": "nuclei_watershed", "smoothing": 0.0})
    assert method == "nuclei_watershed" and options == {"smoothing": 0.0}
    assert M.dsb_score(instances_from_probabilities(probs, method, options), truth) == 1.0
    assert instances_from_probabilities(probs[:2], method, options).max() == 2  # foreground only: distance seeds
    assert instances_from_probabilities(np.concatenate([probs, probs[:1]]), method, options) is None


def test_options_are_checked():
    with pytest.raises(ConfigError, match="nuclei_watershed.*seed_hieght"):
        instance_method({"method": "nuclei_watershed", "seed_hieght": 2})
    with pytest.raises(ConfigError, match=r"foreground_threshold=1.0: expected a number in \(0.0, 1.0\)"):
        instance_method({"method": "nuclei_watershed", "foreground_threshold": 1.0})
    with pytest.raises(ConfigError, match="expected one of"):
        instance_method({"method": "stardist"})
    with pytest.raises(InputError, match="min_size=-1"):
        nuclei_instances(np.zeros((8, 8)), min_size=-1)
    with pytest.raises(InputError, match="logits"):
        nuclei_instances(np.full((8, 8), 3.0))


@pytest.mark.shared_data
@pytest.mark.parametrize(("kind", "expected"), [
    # (objects, connected components of the foreground, DSB score of: connected components, the foreground-only
    # watershed, the 3-class watershed) - measured, to 3 decimals
    ("fluorescence", (369, 228, 0.381, 0.615, 0.990)),
    ("histology", (87, 33, 0.214, 0.436, 1.000)),
    ("brightfield", (75, 54, 0.536, 0.604, 0.995)),
])
def test_ground_truth_probabilities_of_touching_nuclei(shared_data, kind, expected):
    from PIL import Image

    from medhub.data.dsb2018 import target_mask

    truth = np.asarray(Image.open(shared_data / "dsb2018-nuclei" / "labels" / f"{TOUCHING[kind]}.png"))
    components = ndimage.label(truth > 0)[0]
    two_class = nuclei_instances((truth > 0).astype(np.float64), seed_height=1.0, smoothing=0.0)
    classes = target_mask(truth, "three_class")
    three_class = nuclei_instances((classes > 0).astype(np.float64), (classes == 2).astype(np.float64),
                                   smoothing=0.0)
    measured = (int(truth.max()), int(components.max()), M.dsb_score(components, truth), M.dsb_score(two_class, truth),
                M.dsb_score(three_class, truth))
    assert measured[:2] == expected[:2]
    assert measured[2:] == pytest.approx(expected[2:], abs=1e-3)
