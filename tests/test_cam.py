"""CAM and Grad-CAM heatmaps: equal to the manual computation, Grad-CAM == CAM for a GAP + linear head."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medhub.errors import InputError
from medhub.interpret import class_activation_map, grad_cam, jet_colormap, overlay_heatmap
from medhub.models.chexnet import CheXNetConfig, CheXNetForImageClassification

TINY = dict(growth_rate=4, block_config=[1, 2], num_init_features=8, bn_size=2, in_channels=1)


@pytest.fixture(scope="module")
def model() -> CheXNetForImageClassification:
    torch.manual_seed(0)
    return CheXNetForImageClassification(CheXNetConfig(**TINY)).eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 1, 40, 48, generator=torch.Generator().manual_seed(3))


class SmallCNN(nn.Module):
    """Any classifier returning a logits tensor: conv-ReLU-conv-ReLU, global average pooling, linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(6, 3)

    def forward(self, x):
        return self.classifier(self.body(x).mean(dim=(2, 3)))


def manual_cam(maps: torch.Tensor, weights: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    cam = (weights[:, None, None] * maps).sum(dim=0).clamp(min=0)
    cam = F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return ((cam - cam.min()) / (cam.max() - cam.min())).numpy()


def test_cam_equals_manual_computation(model, image):
    with torch.no_grad():
        out = model(image, output_hidden_states=True)
    maps = out.hidden_states[-1][0]
    assert maps.shape == (14, 5, 6)
    for index in (0, 4):  # classes whose weighted maps are positive somewhere (see test_cam_flat_when_no_evidence)
        expected = manual_cam(maps, model.classifier.weight[index].detach(), (40, 48))
        cam = class_activation_map(model, image, index)
        assert cam.shape == (40, 48) and cam.dtype == np.float32
        np.testing.assert_allclose(cam, expected, atol=1e-6)
        assert cam.min() == 0.0 and cam.max() == pytest.approx(1.0)
    by_name, by_index = class_activation_map(model, image, "Pneumonia"), class_activation_map(model, image, 6)
    np.testing.assert_array_equal(by_name, by_index)
    top = int(out.logits[0].argmax())
    np.testing.assert_array_equal(class_activation_map(model, image[0]), class_activation_map(model, image, top))


def test_grad_cam_equals_cam_for_gap_linear_head(model, image):
    for index in (2, 9):
        heatmap = grad_cam(model, image, index)
        assert heatmap.shape == (40, 48)
        assert 0.0 <= heatmap.min() and heatmap.max() == pytest.approx(1.0)
        np.testing.assert_allclose(heatmap, class_activation_map(model, image, index), atol=1e-5)


def test_cam_flat_when_no_evidence(model, image):
    # Hernia's weighted maps are negative everywhere for this random model: after the ReLU nothing is left
    assert model.config.id2label[13] == "Hernia"
    np.testing.assert_array_equal(class_activation_map(model, image, "Hernia"), np.zeros((40, 48), np.float32))
    np.testing.assert_array_equal(grad_cam(model, image, "Hernia"), np.zeros((40, 48), np.float32))


def test_grad_cam_other_layer_and_frozen_model(model, image):
    model.freeze_backbone()
    try:
        heatmap = grad_cam(model, image, "Effusion", target_layer="features.denseblock1")
    finally:
        model.unfreeze()
    assert heatmap.shape == (40, 48) and heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    assert not np.allclose(heatmap, class_activation_map(model, image, "Effusion"))


def test_grad_cam_any_classifier_defaults_to_last_conv():
    torch.manual_seed(0)
    net = SmallCNN().eval()
    x = torch.randn(1, 1, 12, 10)
    heatmap = grad_cam(net, x, 1)  # last convolution: body.2, before its ReLU
    assert heatmap.shape == (12, 10) and heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    # at the ReLU'd maps (what the pooling reads) Grad-CAM is the CAM of the linear head
    at_relu = grad_cam(net, x, 1, target_layer="body.3")
    with torch.no_grad():
        maps = net.body(x)[0]
    np.testing.assert_allclose(at_relu, manual_cam(maps, net.classifier.weight[1].detach(), (12, 10)), atol=1e-5)


def test_cam_input_errors(model, image):
    with pytest.raises(InputError, match="one image at a time"):
        grad_cam(model, image.repeat(2, 1, 1, 1), 0)
    with pytest.raises(InputError, match="expected 0..13"):
        class_activation_map(model, image, 14)
    with pytest.raises(InputError, match="not a label"):
        grad_cam(model, image, "Fracture")
    with pytest.raises(InputError, match="no such module"):
        grad_cam(model, image, 0, target_layer="features.denseblock9")


def test_jet_colormap_and_overlay():
    np.testing.assert_allclose(jet_colormap(np.array([0.0, 0.5, 1.0])),
                               [[0.0, 0.0, 0.5], [0.5, 1.0, 0.5], [0.5, 0.0, 0.0]])
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    heat = np.linspace(0, 1, 12).reshape(3, 4)
    picture = overlay_heatmap(grey, heat, alpha=0.0)
    assert picture.dtype == np.uint8 and picture.shape == (3, 4, 3)
    np.testing.assert_array_equal(picture, np.repeat(grey[..., None], 3, axis=2))
    full = overlay_heatmap(grey, np.zeros((3, 4)), alpha=1.0)
    np.testing.assert_array_equal(full[0, 0], [0, 0, 128])
    half = overlay_heatmap(np.full((1, 1), 100, np.uint8), np.ones((1, 1)), alpha=0.5)
    np.testing.assert_array_equal(half[0, 0], [114, 50, 50])  # 0.5*100 + 0.5*127.5 -> 113.75, 0.5*100
    floats = overlay_heatmap(np.array([[-1.0, 1.0]]), np.zeros((1, 2)), alpha=0.0)  # min-max scaled for display
    np.testing.assert_array_equal(floats[0, :, 0], [0, 255])
    with pytest.raises(InputError, match="heatmap"):
        overlay_heatmap(grey, np.zeros((4, 3)))


def chest_xray_dir() -> Path:
    root = Path(os.environ.get("MEDHUB_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    folder = root / "chest-xray-samples"
    if not (folder / "00000001_000.png").is_file():
        pytest.skip(f"real chest radiographs not found in {folder} (set MEDHUB_DATA_DIR to the shared data folder)")
    return folder


def test_overlay_on_real_radiograph(model):
    from PIL import Image

    picture = Image.open(chest_xray_dir() / "00000001_000.png").convert("L").resize((64, 64), Image.BILINEAR)
    grey = np.asarray(picture)
    x = torch.from_numpy((grey.astype(np.float32) / 255.0 - 0.5) / 0.25)[None, None]
    heatmap = grad_cam(model, x, "Cardiomegaly")
    assert heatmap.shape == (64, 64) and heatmap.max() == pytest.approx(1.0)
    overlay = overlay_heatmap(grey, heatmap, alpha=0.3)
    assert overlay.shape == (64, 64, 3) and overlay.dtype == np.uint8
    # with the heatmap's weight at 0.3, each channel stays within 0.3 * 255 of the radiograph
    assert np.abs(overlay.astype(int) - grey[..., None].astype(int)).max() <= round(0.3 * 255)
