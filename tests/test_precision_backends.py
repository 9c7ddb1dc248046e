"""precision="auto" follows what the hardware reports (faked both ways here, never timed), and the onnxruntime
backend computes the same float32 function as PyTorch (within 1e-4)."""

import warnings

import pytest
import torch

import medhub
from medhub import precision as precision_module
from medhub.acceleration import optimize_for_inference
from medhub.errors import InputError
from medhub.precision import SlowPrecisionWarning, precision_context, resolve_precision

CLASSIFIER = lambda: medhub.ResNetConfig(depth=18, num_labels=2, in_channels=1)  # noqa: E731
UNET_2D = lambda: medhub.UNetConfig(spatial_dims=2, in_channels=1, num_labels=2, base_width=4, depth=2,  # noqa: E731
                                    padding="same", norm="batch", upsampling="interpolate", dropout=0.0)
ATTENTION_UNET_3D = lambda: medhub.AttentionUNetConfig(spatial_dims=3, in_channels=2, num_labels=3,  # noqa: E731
                                                       base_width=4, depth=2)


def _fake_native_bf16(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(precision_module, "native_bf16", lambda device_type="cpu": native)


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_where_native(monkeypatch, native, expected):
    _fake_native_bf16(monkeypatch, native)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto") == expected
        assert resolve_precision("fp32") == "fp32"
    with precision_context("auto"):
        assert torch.is_autocast_enabled("cpu") is (expected == "bf16")


@pytest.mark.parametrize("onednn, avx512_bf16, amx, cap, native", [
    (True, True, False, None, True),  # e.g. AMD Zen 4, Intel Cooper Lake
    (True, False, True, None, True),  # AMX only
    (True, False, False, None, False),  # AVX-512 without BF16 (Skylake): oneDNN runs bf16, emulated
    (True, True, False, "AVX512_CORE", False),  # oneDNN capped below AVX512-BF16
    (True, True, False, "avx512_core_vnni", False),
    (True, True, False, "AVX512_CORE_BF16", True),
    (False, True, False, "AVX2", False),  # capped to AVX2: oneDNN itself reports no bf16
    (False, False, False, None, False),  # no AVX-512 at all (issue 18's CPU)
])
def test_native_bf16_needs_the_instructions_and_no_isa_cap_below_them(monkeypatch, onednn, avx512_bf16, amx, cap,
                                                                      native):
    monkeypatch.setattr(precision_module, "_onednn_bf16", lambda: onednn)
    monkeypatch.setattr(precision_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert precision_module.native_bf16("cpu") is native
    assert resolve_precision("auto") == ("bf16" if native else "fp32")


def test_a_process_with_onednn_capped_to_avx2_runs_auto_in_fp32(monkeypatch):
    """What `benchmarks/run.py --isa avx2` relies on, with the real torch (not faked): a process capped to AVX2 runs
    ATen's AVX2 kernels (or lower) and oneDNN reports no bf16, on any CPU; the cap alone makes 'auto' fp32 here."""
    import os
    import subprocess
    import sys

    code = "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.ops.mkldnn._is_mkldnn_bf16_supported())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    capability, onednn_bf16 = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert capability in ("AVX2", "DEFAULT", "NO AVX") and onednn_bf16 == "False"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolve_precision("auto") == "fp32"


def test_explicit_bf16_without_native_support_warns_with_the_measured_cost(monkeypatch):
    _fake_native_bf16(monkeypatch, False)
    with pytest.warns(SlowPrecisionWarning, match=r"3\.6 s per batch.*0\.53 s"):
        assert resolve_precision("bf16") == "bf16"
    _fake_native_bf16(monkeypatch, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16") == "bf16"
    with pytest.raises(InputError, match="precision"):
        resolve_precision("fp16")


def test_the_real_machine_answer_is_what_pytorch_reports():
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert resolve_precision("auto") == ("bf16" if native else "fp32")


def test_infer_with_auto_is_exact_fp32_without_native_bf16_and_bf16_with_it(monkeypatch):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(CLASSIFIER()).eval()
    x = torch.randn(2, 1, 32, 32)
    exact = model.infer(x)  # the library default stays "fp32"
    _fake_native_bf16(monkeypatch, False)
    assert torch.equal(model.infer(x, precision="auto"), exact)
    _fake_native_bf16(monkeypatch, True)
    low = model.infer(x, precision="auto")
    assert not torch.equal(low, exact) and (low - exact).abs().max().item() < 0.05


@pytest.mark.parametrize("make_config, shape", [(CLASSIFIER, (2, 1, 32, 32)), (UNET_2D, (1, 1, 32, 32)),
                                                (ATTENTION_UNET_3D, (1, 2, 16, 16, 16))],
                         ids=["resnet18-2d", "unet-2d", "attention-unet-3d"])
def test_onnxruntime_backend_matches_pytorch(make_config, shape):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(make_config()).eval()
    x = torch.randn(shape)
    fast = optimize_for_inference(model, x, backend="onnxruntime")
    with torch.inference_mode():
        expected = model(pixel_values=x).logits
        got = fast(pixel_values=x).logits
    assert got.shape == expected.shape and (got - expected).abs().max().item() <= 1e-4
    # the whole-image path (inferer, activation) runs unchanged on the backend
    assert (fast.infer(x) - model.infer(x)).abs().max().item() <= 1e-4
    assert fast.config.to_dict() == model.config.to_dict() and fast.max_abs_diff <= 1e-4


def test_onnxruntime_backend_refuses_what_it_cannot_do():
    model = medhub.MedModel.from_config(CLASSIFIER()).eval()
    x = torch.randn(1, 1, 32, 32)
    with pytest.raises(InputError, match="backend"):
        optimize_for_inference(model, x, backend="tensorrt")
    with pytest.raises(InputError, match="float32"):
        optimize_for_inference(model, x, backend="onnxruntime", precision="bf16")


def test_predict_with_the_onnxruntime_backend_writes_what_pytorch_writes(tmp_path):
    pytest.importorskip("onnxruntime")
    import numpy as np
    from PIL import Image

    from medhub.predict import predict_paths

    torch.manual_seed(0)
    model = medhub.MedModel.from_config(UNET_2D()).eval()
    rng = np.random.default_rng(0)
    image = tmp_path / "cells.png"
    Image.fromarray(rng.integers(0, 256, (40, 36), dtype=np.uint8)).save(image)
    assert predict_paths(model, [image], tmp_path / "torch", progress=False).ok
    assert predict_paths(model, [image], tmp_path / "ort", progress=False, backend="onnxruntime", precision="auto").ok
    for name in ("cells_mask.png",):
        torch_mask = np.asarray(Image.open(tmp_path / "torch" / name))
        assert np.array_equal(np.asarray(Image.open(tmp_path / "ort" / name)), torch_mask)


def test_medhub_predict_defaults_to_auto_precision_and_the_pytorch_backend():
    import argparse

    from medhub.commands.predict import add_arguments

    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["medhub/unet-isbi2012", "x.png", "--out", "o"])
    assert (args.precision, args.backend) == ("auto", "pytorch")
    args = parser.parse_args(["m", "x.png", "--out", "o", "--precision", "fp32", "--backend", "onnxruntime"])
    assert (args.precision, args.backend) == ("fp32", "onnxruntime")
    with pytest.raises(SystemExit):
        parser.parse_args(["m", "x.png", "--out", "o", "--precision", "fp16"])


@pytest.mark.parametrize("native", [True, False])
def test_recipes_bf16_auto_follows_the_cpu(monkeypatch, native):
    from medhub.training import trainer

    monkeypatch.setattr(trainer, "native_bf16", lambda device_type="cpu": native)
    assert trainer._precision("auto", "bf16", "recipe.yaml", use_cpu=True) is native
    assert trainer._precision("auto", "fp16", "recipe.yaml", use_cpu=True) is False
