"""The fast paths of medhub.acceleration are exact (float32 within 1e-4 of eager) or explicitly opt-in (bf16)."""

import pytest
import torch

import medhub
from medhub.acceleration import FastPredictor, find_conv_bn_pairs, optimize_for_inference, precision_context
from medhub.errors import InputError
from medhub.inference import sliding_window_inference

TINY = {
    "attention-unet-2d": (lambda: medhub.AttentionUNetConfig(spatial_dims=2, in_channels=1, num_labels=2, base_width=4),
                          (2, 1, 32, 32)),
    "unet-3d-batchnorm": (lambda: medhub.UNetConfig(spatial_dims=3, in_channels=2, num_labels=3, base_width=4, depth=2,
                                                    padding="same", norm="batch", upsampling="interpolate",
                                                    dropout=0.0),
                          (1, 2, 16, 16, 16)),
    "chexnet": (lambda: medhub.CheXNetConfig(in_channels=1, num_labels=2), (2, 1, 64, 64)),
    "resnet18": (lambda: medhub.ResNetConfig(depth=18, num_labels=2), (1, 3, 64, 64)),
}


def _randomise_bn(model):
    """Non-trivial running statistics, so that folding them is actually tested."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("name", sorted(TINY))
def test_optimized_float32_matches_eager(name):
    make_config, shape = TINY[name]
    torch.manual_seed(0)
    model = _randomise_bn(medhub.MedModel.from_config(make_config()).eval())
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = model(pixel_values=x).logits
    fast = optimize_for_inference(model, x)
    assert fast.medhub_folded_bn > 0
    got = FastPredictor(fast)(x)
    assert (got - expected).abs().max().item() < 1e-4
    # the original model is untouched (the optimised one is a copy)
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_pre_activation_bn_is_not_folded():
    """DenseNet's BN -> ReLU -> conv cannot be folded into the conv after it; only conv -> BN pairs are."""
    model = medhub.MedModel.from_config(medhub.CheXNetConfig(in_channels=1, num_labels=2)).eval()
    pairs = find_conv_bn_pairs(model, torch.randn(1, 1, 64, 64))
    assert pairs  # the stem conv0 -> norm0 and every dense layer's conv1 -> norm2
    for conv, bn in pairs:  # every BN folded reads the conv it is folded into
        assert conv.rsplit(".", 1)[0] == bn.rsplit(".", 1)[0]
    assert not any(bn.endswith("norm1") for _, bn in pairs)  # norm1 reads the concatenated features


def test_bf16_is_opt_in_and_close():
    model = medhub.MedModel.from_config(TINY["attention-unet-2d"][0]()).eval()
    x = torch.randn(1, 1, 32, 32)
    fp32 = FastPredictor(model)(x)
    bf16 = FastPredictor(model, precision="bf16")(x)
    assert bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max().item() < 0.1 * max(1.0, fp32.abs().max().item())
    with pytest.raises(InputError, match="precision"):
        FastPredictor(model, precision="fp16")
    with precision_context("fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_sliding_window_precision_option():
    model = medhub.MedModel.from_config(TINY["attention-unet-2d"][0]()).eval()
    image = torch.randn(1, 1, 48, 40)

    def fn(x):
        return model(pixel_values=x).logits

    exact = sliding_window_inference(fn, image, 32, overlap=0.5)
    fast = sliding_window_inference(FastPredictor(optimize_for_inference(model, torch.randn(1, 1, 32, 32))),
                                    image, 32, overlap=0.5)
    assert (exact - fast).abs().max().item() < 1e-4
    low = sliding_window_inference(fn, image, 32, overlap=0.5, precision="bf16")
    assert low.dtype == torch.float32 and (low - exact).abs().max().item() < 0.1 * max(1.0, exact.abs().max().item())
    with pytest.raises(InputError, match="precision"):
        sliding_window_inference(fn, image, 32, precision="half")


def test_deepmedic_segment_volume_precision():
    from medhub.models.deepmedic.inference_deepmedic import segment_volume

    config = medhub.DeepMedicConfig(
        normal_feature_maps=[4, 4, 6], normal_kernel_sizes=[[3, 3, 3]] * 3, normal_residual_layers=[3],
        subsample_factors=[[3, 3, 3]], fc_feature_maps=[8], fc_first_kernel_size=[3, 3, 3],
        fc_residual_layers=[], fc_dropout_rates=[0.0, 0.5], train_segment_size=[11, 11, 11],
        inference_segment_size=[11, 11, 11], num_labels=3)
    model = medhub.MedModel.from_config(config).eval()
    volume = torch.randn(2, 20, 18, 16)
    exact = segment_volume(model, volume, progress=False)
    low = segment_volume(model, volume, progress=False, precision="bf16")
    assert low.shape == exact.shape and (low - exact).abs().max().item() < 0.05
    with pytest.raises(InputError, match="precision"):
        segment_volume(model, volume, progress=False, precision="int8")


def test_onnx_export_matches_eager(tmp_path):
    pytest.importorskip("onnxruntime")
    from medhub.onnx_runtime import OnnxPredictor, export_onnx

    model = _randomise_bn(medhub.MedModel.from_config(TINY["attention-unet-2d"][0]()).eval())
    x = torch.randn(1, 1, 32, 32)
    diff = export_onnx(model, x, tmp_path / "model.onnx")
    assert diff < 1e-4 and not model.training
    with torch.inference_mode():
        expected = model(pixel_values=x).logits
    assert (OnnxPredictor(tmp_path / "model.onnx")(x) - expected).abs().max().item() < 1e-4


def test_deepmedic_exports_to_onnx_in_its_one_tensor_form(tmp_path):
    pytest.importorskip("onnxruntime")
    from medhub import DeepMedicConfig, MedModel
    from medhub.onnx_runtime import export_onnx

    torch.manual_seed(0)
    model = MedModel.from_config(DeepMedicConfig.released()).eval()
    x = torch.randn(1, 2, *(model.context_size(5),) * 3)  # a context patch: the graph cuts every pathway's input
    assert export_onnx(model, x, tmp_path / "deepmedic.onnx") < 1e-4
