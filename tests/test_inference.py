"""Whole-image inference: sliding window, overlap-tile and flip TTA against single forward passes."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medhub.errors import InputError
from medhub.inference import (
    flip_tta,
    gaussian_importance_map,
    mirror_pad,
    overlap_tile_inference,
    sliding_window_inference,
    window_starts,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _pointwise(dims, c_in=2, c_out=3):
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(c_in, c_out, 1)
    return conv.eval()


# --- sliding window ---------------------------------------------------------------------------------------


def test_gaussian_importance_map_shape_symmetry_and_values():
    w = gaussian_importance_map((9, 12, 7), sigma_scale=0.125)
    assert w.shape == (9, 12, 7)
    for axis in range(3):
        torch.testing.assert_close(w, w.flip(axis), rtol=0, atol=0)
    assert w.max() == pytest.approx(1.0) and w.min() >= 1e-3
    # Axis 1 (roi 12, sigma 1.5): edge at d = 5.5, the maximum at d = 0.5 (even ROI), normalised to 1.
    assert w[4, 0, 3].item() == pytest.approx(np.exp(-(5.5**2 - 0.5**2) / (2 * 1.5**2)))
    g2 = gaussian_importance_map((8, 8))
    assert g2[3, 3] == g2[4, 4] == g2.max()


@pytest.mark.parametrize("size,roi,overlap", [(240, 128, 0.5), (155, 128, 0.5), (10, 4, 0.25), (5, 5, 0.5)])
def test_window_starts_cover_every_voxel(size, roi, overlap):
    starts = window_starts(size, roi, overlap)
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s : s + roi] = True
    assert covered.all() and starts[-1] == max(size - roi, 0)


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("roi,overlap", [((8, 8), 0.5), ((7, 5), 0.25), ((16, 6), 0.0)])
def test_pointwise_net_matches_whole_image_2d(mode, roi, overlap):
    net, x = _pointwise(2), torch.randn(2, 2, 19, 23)
    out = sliding_window_inference(net, x, roi, overlap=overlap, mode=mode, batch_size=3)
    with torch.no_grad():
        torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)


def test_pointwise_net_matches_whole_image_3d():
    net, x = _pointwise(3), torch.randn(1, 2, 20, 17, 11)
    out = sliding_window_inference(net, x, (8, 8, 8), overlap=0.5, mode="gaussian", batch_size=4)
    with torch.no_grad():
        torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)


def test_every_voxel_is_covered():
    out = sliding_window_inference(lambda t: torch.ones_like(t[:, :1]), torch.zeros(1, 1, 13, 29, 9), (6, 8, 4))
    assert torch.equal(out, torch.ones(1, 1, 13, 29, 9))


def test_image_smaller_than_roi_is_padded_and_cropped():
    net, x = _pointwise(2), torch.randn(1, 2, 5, 11)
    seen = []

    def model_fn(t):
        seen.append(tuple(t.shape[2:]))
        return net(t)

    out = sliding_window_inference(model_fn, x, (8, 8), overlap=0.5)
    assert set(seen) == {(8, 8)} and out.shape == (1, 3, 5, 11)
    with torch.no_grad():
        torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-5)


def test_3x3_net_constant_weighting_matches_interior_points():
    conv = nn.Conv2d(1, 2, 3, padding=1).eval()
    x, roi, overlap = torch.randn(1, 1, 21, 18), (8, 8), 0.5
    out = sliding_window_inference(conv, x, roi, overlap=overlap, mode="constant")
    with torch.no_grad():
        full = conv(x)
    # A voxel matches when, in every window covering it, its 3x3 neighbourhood lies inside the window or the
    # window edge it touches is the image border (zero padding in both cases).
    good = np.ones(x.shape[2:], bool)
    starts = [window_starts(s, r, overlap) for s, r in zip(x.shape[2:], roi)]
    for sy, sx in itertools.product(*starts):
        for (axis, start), size, r in zip(enumerate((sy, sx)), x.shape[2:], roi):
            for edge, border in ((start, 0), (start + r - 1, size - 1)):
                if edge != border:
                    idx = [slice(sy, sy + roi[0]), slice(sx, sx + roi[1])]
                    idx[axis] = edge
                    good[tuple(idx)] = False
    assert 0.3 < good.mean() < 1.0
    torch.testing.assert_close(out[0, :, good], full[0, :, good], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[0, :, ~good], full[0, :, ~good], atol=1e-4)


def test_sliding_window_errors():
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(InputError, match="same"):
        sliding_window_inference(lambda t: t[:, :, 1:-1, 1:-1], x, 8)
    with pytest.raises(InputError, match="roi_size"):
        sliding_window_inference(lambda t: t, x, (8, 8, 8))
    with pytest.raises(InputError, match="overlap"):
        sliding_window_inference(lambda t: t, x, 8, overlap=1.0)


# --- overlap-tile -----------------------------------------------------------------------------------------


def _valid_net(dims):
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    return nn.Sequential(conv(1, 4, 3), nn.ReLU(), conv(4, 2, 3)).eval()  # context 2 voxels per side


@pytest.mark.parametrize("shape,out_tile", [((2, 1, 23, 17), (8, 8)), ((1, 1, 16, 12), (4, 6)), ((1, 1, 13, 9, 11), 5)])
def test_overlap_tile_equals_single_pass_on_mirrored_image(shape, out_tile):
    dims = len(shape) - 2
    net, x = _valid_net(dims), torch.randn(shape)
    in_tile = tuple(o + 4 for o in out_tile) if isinstance(out_tile, tuple) else out_tile + 4
    out = overlap_tile_inference(net, x, out_tile, in_tile, batch_size=3)
    with torch.no_grad():
        reference = net(F.pad(x, (2, 2) * dims, mode="reflect"))
    assert out.shape == reference.shape == (shape[0], 2, *shape[2:])
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


def test_mirror_pad_matches_numpy_reflect_beyond_image_size():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    padded = mirror_pad(x, [(7, 4), (2, 9)])
    expected = np.pad(x.numpy(), [(0, 0), (0, 0), (7, 4), (2, 9)], mode="reflect")
    np.testing.assert_array_equal(padded.numpy(), expected)


def test_overlap_tile_errors():
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(InputError, match="even difference"):
        overlap_tile_inference(_valid_net(2), x, 8, 11)
    with pytest.raises(InputError, match="output_tile"):
        overlap_tile_inference(_valid_net(2), x, 8, 14)  # the net maps 14 -> 10, not 8


# --- flip TTA ---------------------------------------------------------------------------------------------


def _flip_equivariant_conv(dims):
    conv = (nn.Conv2d if dims == 2 else nn.Conv3d)(2, 3, 3, padding=1)
    with torch.no_grad():
        w = conv.weight
        axes = range(2, 2 + dims)
        sym = sum(w.flip([a for a in axes if a in s]) for s in itertools.chain.from_iterable(
            itertools.combinations(axes, k) for k in range(dims + 1)))
        conv.weight.copy_(sym / 2**dims)
    return conv.eval()


@pytest.mark.parametrize("dims,activation", [(2, "softmax"), (3, "sigmoid")])
def test_tta_of_flip_equivariant_model_equals_plain_prediction(dims, activation):
    net = _flip_equivariant_conv(dims)
    x = torch.randn(2, 2, *([9, 12, 7][:dims]))
    with torch.no_grad():
        logits = net(x)
    plain = torch.softmax(logits, 1) if activation == "softmax" else torch.sigmoid(logits)
    torch.testing.assert_close(flip_tta(net, x, activation=activation), plain, rtol=1e-5, atol=1e-6)


def test_tta_averages_flipped_back_probabilities():
    net = nn.Conv2d(1, 2, 3, padding=1).eval()
    x = torch.randn(1, 1, 10, 8)
    with torch.no_grad():
        expected = (torch.softmax(net(x), 1) + torch.softmax(net(x.flip(3)), 1).flip(3)) / 2
        plain = torch.softmax(net(x), 1)
    out = flip_tta(net, x, spatial_axes=(1,))
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, plain, atol=1e-4)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 10, 8))
    with pytest.raises(InputError, match="spatial_axes"):
        flip_tta(net, x, spatial_axes=(2,))
