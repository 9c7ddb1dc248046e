"""Speed helpers for inference on CPU (and GPU): opt-in, and exact unless a lower precision is asked for.

- `optimize_for_inference(model, example)` returns an eval-mode copy with batch norms folded into the
  convolutions that feed them (found by tracing one forward pass, then checked against the original on
  `example`: within 1e-4 or an error), weights in channels_last memory format, optionally compiled with
  `torch.compile` (inductor, weight freezing). The result computes the same float32 function as eager.
- `precision_context("bf16")` is `torch.autocast` to bfloat16 (CPU or CUDA); "fp32" is a no-op; "auto" is bf16
  only where the hardware has native bf16 (`medhub.precision`). bf16 trades accuracy for speed: its accuracy
  delta must be reported (see benchmarks/RESULTS.md).
- `FastPredictor(model, precision=..., channels_last=...)` is a callable `x -> logits` (float32) running
  under `torch.inference_mode`, usable as the `model_fn` of `medhub.inference.sliding_window_inference`.
- `optimize_for_inference(model, example, backend="onnxruntime")`: the float32 model through onnxruntime
  (`medhub.onnx_runtime`: exact to ~1e-5, checked; the fastest float32 path in benchmarks/RESULTS.md rows 1-3, 8).

Conv-BN folding is the classic eval-time identity: conv(x) * g / sqrt(v + e) + (b - m) * g / sqrt(v + e)
+ beta is one convolution with rescaled weights and a bias. Pre-activation blocks (BN -> ReLU -> conv, as
DenseNet and DeepMedic) cannot be folded that way and are left alone.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .errors import InputError
from .logging_utils import get_logger
from .precision import PRECISIONS, check_precision, precision_context, resolve_precision  # noqa: F401

logger = get_logger("acceleration")

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
BACKENDS = ("pytorch", "onnxruntime")


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x in channels_last (4-D) or channels_last_3d (5-D) memory format; other ranks unchanged."""
    if x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.ndim == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _model_channels_last(model: nn.Module, spatial_dims: int) -> nn.Module:
    fmt = torch.channels_last_3d if spatial_dims == 3 else torch.channels_last
    for module in model.modules():
        if isinstance(module, _CONVS) and module.weight.ndim == spatial_dims + 2:
            module.weight.data = module.weight.data.contiguous(memory_format=fmt)
    return model


def _logits(out):
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    return out[0]


def find_conv_bn_pairs(model: nn.Module, example: torch.Tensor, **forward_kwargs) -> list[tuple[str, str]]:
    """(conv name, batch-norm name) pairs where, in one traced forward pass, the BN reads exactly the conv's
    output tensor and that output is read by nothing else (so folding cannot change another branch)."""
    names = {m: n for n, m in model.named_modules()}
    produced: dict[int, nn.Module] = {}
    pairs: dict[nn.Module, nn.Module] = {}
    bad: set[nn.Module] = set()
    hooks = []

    def after_conv(module, inputs, output):
        produced[id(output)] = (module, output)
        if module in pairs or module in bad:  # a conv called twice: do not fold it
            bad.add(module)

    def before_any(module, inputs):
        for x in inputs:
            if isinstance(x, torch.Tensor) and id(x) in produced and produced[id(x)][1] is x:
                conv = produced[id(x)][0]
                if isinstance(module, _NORMS) and conv not in pairs:
                    pairs[conv] = module
                else:  # the conv's output also feeds another module: not foldable
                    bad.add(conv)

    for m in model.modules():
        if isinstance(m, _CONVS):
            hooks.append(m.register_forward_hook(after_conv))
        if not list(m.children()):
            hooks.append(m.register_forward_pre_hook(before_any))
    try:
        with torch.inference_mode():
            model(example, **forward_kwargs)
    finally:
        for h in hooks:
            h.remove()
    return [(names[c], names[b]) for c, b in pairs.items() if c not in bad and isinstance(b, _NORMS)
            and not b.training and b.track_running_stats]


def fuse_conv_bn(model: nn.Module, example: torch.Tensor, atol: float = 1e-4, **forward_kwargs) -> int:
    """Fold eval-mode batch norms into the convolutions feeding them, in place; return how many were folded.

    The fused model is compared with the unfused one on `example`; a difference above `atol` (relative to
    the output's scale) restores the original weights and raises, instead of returning a different model.
    Functional uses of a conv output (e.g. `torch.relu(conv(x)) + conv_out`) are outside what the hooks
    see, which is why the comparison is done.
    """
    model.eval()
    pairs = find_conv_bn_pairs(model, example, **forward_kwargs)
    if not pairs:
        return 0
    with torch.inference_mode():
        reference = _logits(model(example, **forward_kwargs)).float().clone()
    modules = dict(model.named_modules())
    saved = {}
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        fused = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.modules.conv._ConvTransposeNd))
        saved[conv_name], saved[bn_name] = conv, bn
        _set_module(model, conv_name, fused)
        _set_module(model, bn_name, nn.Identity())
    with torch.inference_mode():
        got = _logits(model(example, **forward_kwargs)).float()
    scale = max(1.0, float(reference.abs().max()))
    diff = float((got - reference).abs().max())
    if diff > atol * scale:
        for name, module in saved.items():
            _set_module(model, name, module)
        raise RuntimeError(f"fuse_conv_bn: folded model differs from eager by {diff:.3g} (> {atol} x {scale:.3g}); "
                           f"restored the original modules")
    return len(pairs)


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def optimize_for_inference(model: nn.Module, example: torch.Tensor, *, channels_last: bool = True,
                           fuse_bn: bool = True, compile: bool = False, precision: str = "fp32",
                           backend: str = "pytorch", **forward_kwargs) -> nn.Module:
    """An eval-mode copy of `model` that computes the same float32 function, faster on CPU.

    example: one input batch (shape and dtype of real inputs) used to find foldable conv/BN pairs, to check
        the folding, and to warm up (and compile) the model.
    compile: also `torch.compile` it (inductor; weights frozen as constants, which folds the rest of the
        inference graph). The compile time is logged and stored as `model.medhub_compile_seconds`.
        Shapes are static: call it with inputs of the example's shape, layout and dtype (others recompile).
    precision: the precision the compiled model will run under ("bf16": compiled under bf16 autocast, so
        calls under `precision_context("bf16")` do not compile again; "auto": bf16 where it is native, see
        `medhub.precision`).
    backend: "pytorch", or "onnxruntime": an `OnnxRuntimeModel` (float32 graphs run by onnxruntime, each checked
        against eager PyTorch within 1e-4; `pip install medhub[fast]`); channels_last, fuse_bn and compile are
        PyTorch's and do not apply.
    """
    if not isinstance(example, torch.Tensor):
        raise InputError(f"example: expected a torch.Tensor batch, got {type(example).__name__}")
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    precision = resolve_precision(precision, example.device.type)
    if backend == "onnxruntime":
        if compile or precision != "fp32" or forward_kwargs:
            raise InputError("backend='onnxruntime' runs the float32 `pixel_values -> logits` graph: compile, "
                             f"precision={precision!r} and extra forward arguments do not apply")
        from .onnx_runtime import OnnxRuntimeModel

        return OnnxRuntimeModel(copy.deepcopy(model).eval(), example.cpu())
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    spatial_dims = example.ndim - 2
    fast.medhub_folded_bn = fuse_conv_bn(fast, example, **forward_kwargs) if fuse_bn else 0
    if channels_last and spatial_dims in (2, 3):
        _model_channels_last(fast, spatial_dims)
    fast.medhub_compile_seconds = 0.0
    if compile:
        import torch._inductor.config as inductor_config

        start = time.perf_counter()
        compiled = torch.compile(fast, dynamic=False)
        with torch.inference_mode(), inductor_config.patch(freezing=True), \
                precision_context(precision, example.device.type):  # compiled on this first call
            compiled(to_channels_last(example) if channels_last else example, **forward_kwargs)
        seconds = time.perf_counter() - start
        logger.info("torch.compile of %s took %.1f s", type(model).__name__, seconds)
        compiled.medhub_compile_seconds = seconds
        compiled.medhub_folded_bn = fast.medhub_folded_bn
        return compiled
    return fast


def with_backend(model: nn.Module, backend: str = "pytorch") -> nn.Module:
    """`model` itself for "pytorch"; for "onnxruntime" an `OnnxRuntimeModel` around it (graphs exported per input
    shape on first use, each checked against `model`; CPU only)."""
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "pytorch":
        return model
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise InputError(f"backend='onnxruntime' runs on the CPU; the model is on {device}")
    from .onnx_runtime import OnnxRuntimeModel

    return OnnxRuntimeModel(model)


class FastPredictor:
    """`x -> float32 logits` under inference_mode, with channels_last inputs and optional bf16 autocast.

    model: a medhub model (or any module returning a tensor or an output with `.logits`); wrap the result of
        `optimize_for_inference` for the exact float32 fast path.
    precision: "fp32" (exact) or "bf16" (autocast; report its accuracy delta).
    """

    def __init__(self, model: Callable, precision: str = "fp32", channels_last: bool = True, **forward_kwargs):
        self.model = model
        self.precision = check_precision(precision)  # "auto" is resolved per call, for the input's device
        self.channels_last = channels_last
        self.forward_kwargs = forward_kwargs

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = to_channels_last(x)
        with torch.inference_mode(), precision_context(self.precision, x.device.type):
            out = _logits(self.model(x, **self.forward_kwargs))
        return out.float()


__all__ = ["BACKENDS", "PRECISIONS", "FastPredictor", "check_precision", "find_conv_bn_pairs", "fuse_conv_bn",
           "optimize_for_inference", "precision_context", "to_channels_last", "with_backend"]
