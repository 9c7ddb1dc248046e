"""DeepMedic: preset arithmetic and parameter counts against the original, both input forms, loss, I/O, dense
inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import medhub
from medhub.errors import ConfigError, InputError
from medhub.layers.deepmedic_blocks import (
    add_residual,
    conv_upsampled,
    crop_centre,
    pad_symmetric,
    upsample_repeat,
)
from medhub.models.deepmedic import (
    DeepMedicConfig,
    DeepMedicForSegmentation,
    deepmedic_cross_entropy,
    segment_volume,
)
from medhub.models.deepmedic.inference_deepmedic import subsampled_indices, tile_starts


def tiny_config(**kwargs) -> DeepMedicConfig:
    """3 layers of 3^3 (receptive field 7), one x3 pathway, FC 8 with a 3^3 first kernel, 3 classes."""
    settings = dict(
        normal_feature_maps=[4, 4, 6], normal_kernel_sizes=[[3, 3, 3]] * 3, normal_residual_layers=[3],
        subsample_factors=[[3, 3, 3]], fc_feature_maps=[8], fc_first_kernel_size=[3, 3, 3],
        fc_residual_layers=[], fc_dropout_rates=[0.0, 0.5], train_segment_size=[11, 11, 11],
        inference_segment_size=[11, 11, 11], num_labels=3,
    )
    settings.update(kwargs)
    return DeepMedicConfig(**settings)


def tiny_model(seed: int = 0, **kwargs) -> DeepMedicForSegmentation:
    torch.manual_seed(seed)
    model = DeepMedicForSegmentation(tiny_config(**kwargs))
    with torch.no_grad():  # non-trivial batch-norm statistics and biases, so that eval mode is really tested
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith(".bias") or name == "output_bias":
                tensor.copy_(torch.randn_like(tensor) * 0.1)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    return model.eval()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pathway_params(in_channels: int, maps: list[int], k: int = 27) -> int:
    """Input bias + bare conv, then BN (2n) + PReLU (n) + conv per later layer (convs have no bias)."""
    total = in_channels + in_channels * maps[0] * k
    for n_in, n_out in zip(maps[:-1], maps[1:]):
        total += 3 * n_in + n_in * n_out * k
    return total


def fc_params(channels: list[int], first_kernel: int) -> int:
    total = 0
    for i, (n_in, n_out) in enumerate(zip(channels[:-1], channels[1:])):
        total += 3 * n_in + n_in * n_out * (first_kernel if i == 0 else 1)
    return total + channels[-1]  # the output bias before the softmax


# -- presets ------------------------------------------------------------------------------------------------
def test_released_preset_is_the_default_and_has_2008901_parameters():
    config = DeepMedicConfig()
    assert config.to_dict() == DeepMedicConfig.released().to_dict()
    assert (config.in_channels, config.num_labels, config.subsample_factors) == (2, 5, [[3, 3, 3], [5, 5, 5]])
    model = DeepMedicForSegmentation(config)
    maps = [30, 30, 40, 40, 40, 40, 50, 50]
    expected = 3 * pathway_params(2, maps) + fc_params([150, 250, 250, 5], 27)
    assert expected == n_params(model) == 2_008_901


def test_paper_preset_parameters_and_segments():
    model = DeepMedicForSegmentation(DeepMedicConfig.paper())
    maps = [30, 30, 40, 40, 40, 40, 50, 50]
    expected = 2 * pathway_params(2, maps) + fc_params([100, 150, 150, 5], 1)
    assert n_params(model) == expected == 659_919
    assert model.receptive_field == (17, 17, 17)
    assert model.output_size(25) == 9
    assert model.segment_sizes(9) == [25, 19]


def test_released_segment_arithmetic():
    model = DeepMedicForSegmentation(DeepMedicConfig())
    assert model.output_size(37) == 21 and model.output_size(45) == 29
    assert model.segment_sizes(21) == [37, 23, 21]
    assert model.segment_sizes(29) == [45, 26, 22]
    assert model.segment_sizes((21, 29, 1)) == [(37, 45, 17), (23, 26, 17), (21, 22, 17)]
    # the x5 pathway sees 5 * 16 voxels beyond each side of the output: context = o + 80
    assert model.context_size(21) == 101 and model.context_size(29) == 109


def test_subsampled_inputs_sit_where_the_original_samples_them():
    model = DeepMedicForSegmentation(DeepMedicConfig())
    context = torch.arange(101.0).view(1, 1, 101, 1, 1).expand(1, 1, 101, 101, 101)
    normal, x3, x5 = model.geometry.extract(context, (21, 21, 21))
    # margin 32; original offsets: x3 starts 16 voxels before the normal segment, x5 32 before
    assert normal[0, 0, :, 0, 0].tolist() == list(range(32, 69))
    assert x3[0, 0, :, 0, 0].tolist() == list(range(16, 16 + 3 * 23, 3))
    assert x5[0, 0, :, 0, 0].tolist() == list(range(0, 5 * 21, 5))


def test_receptive_field_of_the_paper_network_is_17():
    torch.manual_seed(0)
    model = DeepMedicForSegmentation(DeepMedicConfig.paper()).eval()
    normal = torch.randn(1, 2, 19, 19, 19, requires_grad=True)
    sub = torch.randn(1, 2, 17, 17, 17)
    logits = model(normal, subsampled_values=[sub]).logits
    assert logits.shape == (1, 5, 3, 3, 3)
    logits[0, :, 0, 0, 0].sum().backward()
    reached = normal.grad[0].abs().sum(0) > 0
    assert reached[:17, :17, :17].all() and not reached[17:].any() and not reached[:, 17:].any()


# -- forward ----------------------------------------------------------------------------------------------
def test_released_forward_on_an_inference_segment():
    torch.manual_seed(0)
    model = DeepMedicForSegmentation(DeepMedicConfig()).eval()
    inputs = [torch.randn(1, 2, s, s, s) for s in model.segment_sizes(29)]
    with torch.no_grad():
        out = model(inputs[0], subsampled_values=inputs[1:], output_hidden_states=True)
    assert out.logits.shape == (1, 5, 29, 29, 29)
    assert [h.shape[1] for h in out.hidden_states] == [50, 50, 50]
    assert torch.isfinite(out.logits).all()


def test_both_input_forms_give_identical_outputs():
    model = tiny_model()
    output = (5, 6, 4)
    context = torch.randn(2, 2, *model.context_size(output))
    segments = model.geometry.extract(context, output)
    assert [tuple(s.shape[2:]) for s in segments] == model.segment_sizes(output)
    with torch.no_grad():
        from_context = model(context).logits
        from_segments = model(segments[0], subsampled_values=segments[1:]).logits
    assert from_context.shape == (2, 3, *output)
    assert torch.equal(from_context, from_segments)


def test_training_step_and_labels_at_input_or_output_size():
    model = tiny_model().train()
    segments = [torch.randn(2, 2, *s) for s in model.segment_sizes((5, 5, 5))]
    labels_in = torch.randint(0, 3, (2, 11, 11, 11))
    out = model(segments[0], subsampled_values=segments[1:], labels=labels_in)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        a = model(segments[0], subsampled_values=segments[1:], labels=labels_in).loss
        b = model(segments[0], subsampled_values=segments[1:], labels=labels_in[:, 3:8, 3:8, 3:8]).loss
    assert torch.equal(a, b)


def test_loss_is_the_original_cross_entropy():
    logits = torch.zeros(1, 5, 2, 1, 1)
    labels = torch.tensor([[[[0]], [[3]]]])
    assert deepmedic_cross_entropy(logits, labels).item() == pytest.approx(-math.log(0.2 + 1e-6), rel=1e-6)
    weighted = deepmedic_cross_entropy(logits, labels, [1.0, 1.0, 1.0, 3.0, 1.0])
    assert weighted.item() == pytest.approx(-(1 + 3) / 2 * math.log(0.2 + 1e-6), rel=1e-6)
    logits = torch.tensor([2.0, 0.0, -1.0]).view(1, 3, 1, 1, 1)
    p = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    assert deepmedic_cross_entropy(logits, torch.tensor([[[[2]]]])).item() == pytest.approx(-math.log(p[2] + 1e-6))


# -- errors -----------------------------------------------------------------------------------------------------
def test_input_errors_name_the_minimum_and_the_expected_shape():
    model = tiny_model()
    with pytest.raises(InputError, match=r"minimum is \(7, 7, 7\)"):
        model(torch.randn(1, 2, 6, 9, 9), subsampled_values=[torch.randn(1, 2, 7, 7, 7)])
    with pytest.raises(InputError, match="expected 2 channel"):
        model(torch.randn(1, 3, 9, 9, 9), subsampled_values=[torch.randn(1, 3, 7, 7, 7)])
    with pytest.raises(InputError, match=r"expected shape \(1, 2, 7, 7, 7\)"):
        model(torch.randn(1, 2, 9, 9, 9), subsampled_values=[torch.randn(1, 2, 8, 7, 7)])
    with pytest.raises(InputError, match=r"minimum is \(19, 19, 19\)"):
        model(torch.randn(1, 2, 18, 19, 19))
    with pytest.raises(InputError, match="minimum is"):
        segment_volume(model, torch.randn(2, 3, 20, 20), progress=False)


def test_config_validation_and_round_trip():
    config = tiny_config()
    again = DeepMedicConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert DeepMedicConfig.paper().to_dict() == DeepMedicConfig.from_dict(DeepMedicConfig.paper().to_dict()).to_dict()
    with pytest.raises(ConfigError, match="normal_residual_layers"):
        tiny_config(normal_residual_layers=[1])
    with pytest.raises(ConfigError, match="receptive field"):
        tiny_config(subsampled_feature_maps=[4, 4], subsampled_kernel_sizes=[[3, 3, 3]] * 2)
    with pytest.raises(ConfigError, match="fc_dropout_rates"):
        tiny_config(fc_dropout_rates=[0.5])


def test_save_and_load_round_trip(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert isinstance(loaded, DeepMedicForSegmentation)
    assert loaded.config.to_dict()["subsample_factors"] == [[3, 3, 3]]
    reference = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    context = torch.randn(1, 2, *model.context_size((3, 3, 3)))
    with torch.no_grad():
        assert torch.equal(model(context).logits, loaded(context).logits)


# -- layers and dense inference ----------------------------------------------------------------------------------
def test_block_helpers_follow_the_original():
    x = torch.arange(2 * 4 * 5 * 3, dtype=torch.float32).view(1, 2, 4, 5, 3)
    np.testing.assert_array_equal(pad_symmetric(x, [2, 3, 0]).numpy(),
                                  np.pad(x.numpy(), [(0, 0), (0, 0), (1, 1), (1, 2), (0, 0)], mode="symmetric"))
    assert crop_centre(torch.arange(6.0).view(1, 1, 6, 1, 1), (2, 1, 1)).flatten().tolist() == [2.0, 3.0]
    deeper, earlier = torch.zeros(1, 3, 1, 1, 1), torch.ones(1, 2, 3, 3, 3)
    assert add_residual(deeper, earlier).flatten().tolist() == [1.0, 1.0, 0.0]
    assert upsample_repeat(torch.tensor([1.0, 2.0]).view(1, 1, 2, 1, 1), (3, 1, 1), (5, 1, 1)).flatten().tolist() \
        == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert tile_starts(30, 11, 5) == [0, 5, 10, 15, 19]
    # the original restarts a subsampled grid that begins before the volume at voxel 0
    assert subsampled_indices(-4, 3, 5, 20).tolist() == [20, 0, 3, 6, 20]
    assert subsampled_indices(4, 3, 5, 12).tolist() == [4, 7, 10, 12, 12]


@pytest.mark.parametrize("factors, kernel, size", [
    ((3, 3, 3), (3, 3, 3), (21, 21, 21)), ((5, 5, 5), (3, 3, 3), (29, 29, 29)), ((2, 3, 1), (3, 1, 3), (7, 8, 9)),
    ((3, 3, 3), (1, 1, 1), (10, 9, 8)), ((4, 4, 4), (3, 3, 3), (8, 9, 11)),
])
def test_conv_upsampled_equals_convolving_the_repeated_input(factors, kernel, size):
    torch.manual_seed(0)
    counts = [-(-s // f) + 1 for s, f in zip(size, factors)]  # one coarse voxel too many: must be ignored
    coarse = torch.randn(2, 4, *counts, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, *kernel, dtype=torch.float64, requires_grad=True)
    direct = torch.nn.functional.conv3d(pad_symmetric(upsample_repeat(coarse, factors, size), [k - 1 for k in kernel]),
                                        weight)
    fast = conv_upsampled(coarse, weight, factors, size)
    torch.testing.assert_close(fast, direct, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(direct)
    expected = torch.autograd.grad(direct, (coarse, weight), grad)
    for got, want in zip(torch.autograd.grad(fast, (coarse, weight), grad), expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_training_step_matches_concatenating_the_repeated_pathways():
    """The first FC layer convolves the subsampled pathways on their coarse grid: same loss and gradients."""
    from medhub.layers import deepmedic_blocks

    model = tiny_model().double().train()
    for module in model.modules():  # dropout is random; the comparison needs the same function twice
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    torch.manual_seed(2)
    context = torch.randn(2, 2, *model.context_size((6, 6, 6)), dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 6, 6, 6))
    results = []
    for coarse in (True, False):
        original = deepmedic_blocks.DeepMedicConvBlock._convolves_coarse
        if not coarse:
            deepmedic_blocks.DeepMedicConvBlock._convolves_coarse = lambda self: False
        try:
            model.zero_grad()
            state = {k: v.clone() for k, v in model.state_dict().items()}
            loss = model(context, labels=labels).loss
            loss.backward()
            results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
            model.load_state_dict(state)
        finally:
            deepmedic_blocks.DeepMedicConvBlock._convolves_coarse = original
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=1e-12)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-9, atol=1e-12, msg=name)


def test_dense_inference_covers_every_voxel_and_matches_a_direct_forward():
    model = tiny_model()
    torch.manual_seed(1)
    volume = torch.randn(2, 24, 24, 24)
    probs = model.segment_volume(volume, batch_size=16, progress=False)
    assert probs.shape == (3, 24, 24, 24)
    torch.testing.assert_close(probs.sum(0), torch.ones(24, 24, 24))
    # the tile whose normal segment starts at padded voxel 10 predicts voxels 10..14 on every axis
    padded = torch.nn.functional.pad(volume[None], (3,) * 6, mode="reflect")
    context = padded[:, :, 4:27, 4:27, 4:27]
    with torch.no_grad():
        direct = torch.softmax(model(context).logits, dim=1)[0]
    torch.testing.assert_close(probs[:, 10:15, 10:15, 10:15], direct, rtol=1e-5, atol=1e-6)
    masked = model.segment_volume(volume, progress=False, roi_mask=torch.zeros(24, 24, 24))
    assert torch.count_nonzero(masked) == 0
    fast = model.segment_volume(volume, batch_size=16, progress=False, precision="bf16")  # autocast: close, not equal
    assert (fast - probs).abs().max() < 0.1 and (fast.argmax(0) == probs.argmax(0)).float().mean() > 0.95


def test_compiled_dense_inference_equals_eager_and_pads_the_last_batch():
    model = tiny_model()
    torch.manual_seed(2)
    volume = torch.randn(2, 20, 24, 22)
    eager = model.segment_volume(volume, batch_size=5, progress=False)
    # 4 x 5 x 5 = 100 tiles: the last batch of 7 holds 2 tiles and is filled up to the compiled shape
    compiled = model.segment_volume(volume, batch_size=7, progress=False, compile=True)
    assert compiled.shape == (3, 20, 24, 22)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    assert model.training is False and all(p.requires_grad for p in model.parameters())  # the model is untouched
