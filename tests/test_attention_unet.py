"""Attention U-Net: gate arithmetic, attention maps, deep supervision, 2D/3D shapes, save/load, errors."""

import json

import pytest
import torch
import transformers

import medhub
from medhub.errors import ConfigError, InputError
from medhub.layers.attention_gate import AttentionGate
from medhub.losses import segmentation_loss
from medhub.models.attention_unet import AttentionUNetConfig, AttentionUNetForSegmentation, AttentionUNetModel


def expected_parameter_count(in_channels, num_labels, base_width, depth, spatial_dims, deep_supervision):
    """Layer arithmetic with batch norm (2 parameters per channel) everywhere the model has it."""
    k3, k2 = 3**spatial_dims, 2**spatial_dims
    widths = [base_width * 2**i for i in range(depth + 1)]

    def conv(c_in, c_out, kernel_volume, bias=True):
        return kernel_volume * c_in * c_out + (c_out if bias else 0)

    def double_conv(c_in, c_out):
        return conv(c_in, c_out, k3) + conv(c_out, c_out, k3) + 4 * c_out

    total = sum(double_conv(c_in, c_out) for c_in, c_out in zip([in_channels] + widths[:-1], widths))
    total += conv(widths[-1], widths[-1], 1) + 2 * widths[-1]  # gating signal
    for level in range(1, depth):  # gates: theta (strided, no bias), phi, psi, W + BN
        c, g, inter = widths[level], widths[level + 1], widths[level] // 2
        total += conv(c, inter, k2, bias=False) + conv(g, inter, 1) + conv(inter, 1, 1) + conv(c, c, 1) + 2 * c
    total += sum(double_conv(widths[level] + widths[level + 1], widths[level]) for level in range(depth))
    total += conv(widths[0], num_labels, 1)
    if deep_supervision:
        total += sum(conv(widths[level], num_labels, 1) for level in range(1, depth))
    return total


def test_gate_with_constant_coefficient_scales_the_skip():
    gate = AttentionGate(in_channels=4, gating_channels=8, spatial_dims=2, norm_kind=None)
    with torch.no_grad():
        gate.psi.weight.zero_()
        gate.psi.bias.fill_(0.5)
        gate.output_conv.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        gate.output_conv.bias.zero_()
    x, g = torch.randn(2, 4, 8, 6), torch.randn(2, 8, 4, 3)
    out, alpha = gate(x, g)
    assert alpha.shape == (2, 1, 8, 6)
    torch.testing.assert_close(alpha, torch.full_like(alpha, torch.sigmoid(torch.tensor(0.5)).item()))
    torch.testing.assert_close(out, alpha * x)


def test_gate_coefficients_follow_the_additive_formula():
    torch.manual_seed(0)
    gate = AttentionGate(in_channels=2, gating_channels=3, inter_channels=2, spatial_dims=2, norm_kind=None)
    x, g = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 2, 2)
    _, alpha = gate(x, g)
    # by hand at the gating grid: theta is a 2x2 stride-2 conv, so cell (0, 0) sees x[..., :2, :2]
    theta = (gate.theta.weight * x[:, None, :, :2, :2]).sum(dim=(2, 3, 4))
    phi = gate.phi.weight[:, :, 0, 0] @ g[0, :, 0, 0] + gate.phi.bias
    q = gate.psi.weight[0, :, 0, 0] @ torch.relu(theta[0] + phi) + gate.psi.bias
    coarse = torch.sigmoid(q)
    # bilinear x2 upsampling (align_corners=False) leaves the corner pixel at the corner cell's value
    torch.testing.assert_close(alpha[0, 0, 0, 0], coarse[0])


@pytest.mark.parametrize("spatial_dims, size", [(2, (32, 48)), (3, (16, 16, 24))])
def test_forward_backward_attention_maps_and_deep_supervision(spatial_dims, size):
    config = AttentionUNetConfig(spatial_dims=spatial_dims, base_width=4, depth=3, num_labels=3)
    model = AttentionUNetForSegmentation(config)
    torch.manual_seed(0)
    pixel_values = torch.randn(2, 1, *size)
    labels = torch.randint(0, 3, (2, *size))
    out = model(pixel_values, labels=labels, output_attentions=True, output_hidden_states=True)
    assert out.logits.shape == (2, 3, *size)
    # one map per gate (levels 2 then 1), at the skip resolution, in [0, 1]
    assert [a.shape for a in out.attentions] == [
        (2, 1, *[s // 4 for s in size]), (2, 1, *[s // 2 for s in size])]
    assert all(((a >= 0) & (a <= 1)).all() for a in out.attentions)
    assert [d.shape for d in out.deep_supervision_logits] == [(2, 3, *size)] * 2
    assert len(out.encoder_hidden_states) == 4 and len(out.decoder_hidden_states) == 3
    # the loss is the mean of the dice_ce losses of the final and the deep-supervision logits
    per_head = [segmentation_loss("dice_ce", logits, labels) for logits in (out.logits, *out.deep_supervision_logits)]
    torch.testing.assert_close(out.loss, torch.stack(per_head).mean())
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.num_parameters() == expected_parameter_count(1, 3, 4, 3, spatial_dims, True)


def test_without_deep_supervision_and_without_outputs_asked():
    config = AttentionUNetConfig(spatial_dims=2, base_width=2, depth=2, deep_supervision=False)
    model = AttentionUNetForSegmentation(config).eval()
    out = model(torch.randn(1, 1, 8, 8))
    assert out.deep_supervision_logits is None and out.attentions is None and out.encoder_hidden_states is None
    assert out.loss is None and out.logits.shape == (1, 2, 8, 8)
    assert model.num_parameters() == expected_parameter_count(1, 2, 2, 2, 2, False)
    assert not any(k.startswith("deep_supervision_heads") for k in model.state_dict())


def test_paper_preset_parameter_count():
    with torch.device("meta"):
        model = AttentionUNetForSegmentation(AttentionUNetConfig.paper())
    assert model.num_parameters() == expected_parameter_count(1, 2, 16, 4, 3, True) == 6_083_675


def test_input_and_config_errors():
    model = AttentionUNetForSegmentation(AttentionUNetConfig(spatial_dims=2, base_width=2, depth=3))
    assert model.valid_input_size((30, 3)) == (32, 8) and model.output_size(16) == (16, 16)
    with pytest.raises(InputError, match=r"multiples of 2\*\*depth = 8.* nearest valid input size is \(32, 8\)"):
        model(torch.zeros(1, 1, 30, 3))
    with pytest.raises(InputError, match=r"expected 1 channel"):
        model(torch.zeros(1, 2, 16, 16))
    with pytest.raises(InputError, match=r"expected a 4-D tensor"):
        model(torch.zeros(1, 1, 16, 16, 16))
    with pytest.raises(ConfigError, match=r"padding='valid' is not supported.*use padding='same'"):
        AttentionUNetConfig(padding="valid")
    with pytest.raises(ConfigError, match="depth"):
        AttentionUNetConfig(depth=1)
    with pytest.raises(ConfigError, match="norm"):
        AttentionUNetConfig(norm="layer")


def test_save_load_round_trip(tmp_path):
    config = AttentionUNetConfig(spatial_dims=2, base_width=2, depth=2, num_labels=3, in_channels=2,
                                 channel_names=["flair", "t1c"])
    model = AttentionUNetForSegmentation(config)
    model.train()(torch.randn(2, 2, 8, 8))  # move the batch-norm statistics away from their initial values
    model.eval().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "medhub-attention-unet" and saved["deep_supervision"] is True
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert type(loaded) is AttentionUNetForSegmentation and loaded.config.channel_names == ["flair", "t1c"]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(a, loaded.state_dict()[k]) for k, a in model.state_dict().items())
    x = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, loaded(x).logits, rtol=0, atol=0)
    assert "Attention U-Net: Learning Where to Look for the Pancreas" in (tmp_path / "README.md").read_text()


def test_registry():
    config = AttentionUNetConfig(spatial_dims=2, base_width=1, depth=2)
    assert type(transformers.AutoModelForSemanticSegmentation.from_config(config)) is AttentionUNetForSegmentation
    assert type(transformers.AutoModel.from_config(config)) is AttentionUNetModel
    assert AttentionUNetForSegmentation.paper.url == "https://arxiv.org/abs/1804.03999"
