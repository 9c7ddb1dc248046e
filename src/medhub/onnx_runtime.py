"""ONNX Runtime as an exact float32 prediction backend (`pip install medhub[fast]`: onnx + onnxruntime).

- `export_onnx(model, example, path)`: `pixel_values -> logits` exported with the TorchScript exporter; returns the
  max abs difference between onnxruntime and eager float32 on `example`.
- `OnnxPredictor(path)`: `x -> float32 logits` through onnxruntime's CPU provider.
- `OnnxRuntimeModel(model, example)` (what `optimize_for_inference(model, example, backend="onnxruntime")`
  returns): a drop-in for a medhub model whose forward runs in onnxruntime. Graphs have static shapes (models whose
  layers compute crops and sizes from the input, as the valid-padding U-Net does, bake them in), so one graph is
  exported per input shape, on its first use, and checked against eager PyTorch on that input: a difference above
  `atol` (relative to the output's scale) raises instead of returning other numbers. Everything but forward
  (config, inferer, `infer`, input checks) is the wrapped model's, so `model.infer(...)`, `medhub predict` and the
  inferers run unchanged. DeepMedic's `segment_volume` runs its two-pathway tiles in PyTorch.

On the AVX-512 machine of benchmarks/RESULTS.md (rows 1-3, 8) onnxruntime was the fastest exact float32 path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from .acceleration import _logits
from .errors import InputError
from .logging_utils import get_logger

logger = get_logger("onnx_runtime")


class _LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.pytorch_model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _logits(self.pytorch_model(pixel_values=pixel_values))


def _export(model: nn.Module, example: torch.Tensor, path, opset: int) -> torch.Tensor:
    """Export to `path`; return eager float32 logits on `example` (the model's train/eval mode is kept)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        reference = _logits(model(pixel_values=example)).float()
    torch.onnx.export(_LogitsOnly(model).eval(), (example,), str(path), dynamo=False, input_names=["pixel_values"],
                      output_names=["logits"], opset_version=opset)
    model.train(was_training)  # the exporter restores the wrapper's mode onto the model; put the caller's back
    return reference


def export_onnx(model: nn.Module, example: torch.Tensor, path, opset: int = 17) -> float:
    """Export `model` (pixel_values -> logits) to ONNX at `path` with the TorchScript exporter; return the max abs
    difference between onnxruntime and eager float32 on `example` (needs `pip install medhub[fast]`)."""
    reference = _export(model, example, path, opset)
    got = OnnxPredictor(path)(example)
    return float((got - reference).abs().max())


class OnnxPredictor:
    """`x -> float32 logits` through onnxruntime's CPU provider (an exported float32 model: exact to ~1e-5)."""

    def __init__(self, path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("backend='onnxruntime' needs onnxruntime: pip install medhub[fast]") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"pixel_values": x.detach().cpu().float().numpy()})[0])


class OnnxRuntimeModel(nn.Module):
    """A medhub model whose forward runs in onnxruntime (see the module docstring); `pytorch_model` is the reference
    (exports, checks, heatmaps)."""

    def __init__(self, model: nn.Module, example: torch.Tensor | None = None, atol: float = 1e-4, opset: int = 17):
        super().__init__()
        self.pytorch_model = model.eval()
        self.atol, self.opset = atol, opset
        self.graphs: dict[tuple[int, ...], OnnxPredictor] = {}
        self.max_abs_diff = 0.0  # the largest eager-vs-onnxruntime difference seen on the export checks
        self._folder = tempfile.TemporaryDirectory(prefix="medhub-onnx-")
        if example is not None:
            self._predictor(example)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("pytorch_model"), name)

    def _predictor(self, x: torch.Tensor) -> OnnxPredictor:
        shape = tuple(x.shape)
        if shape not in self.graphs:
            path = Path(self._folder.name) / f"graph{len(self.graphs)}.onnx"
            # exported and checked in plain float32, also when first met inside an inferer (inference mode, autocast)
            with torch.inference_mode(False), torch.autocast("cpu", enabled=False):
                x = x.detach().float().cpu().clone()
                reference = _export(self.pytorch_model, x, path, self.opset)
            predictor = OnnxPredictor(path)
            diff = float((predictor(x) - reference).abs().max())
            scale = max(1.0, float(reference.abs().max()))
            if diff > self.atol * scale:
                name = type(self.pytorch_model).__name__
                raise RuntimeError(f"onnxruntime: the exported {name} differs from PyTorch by {diff:.3g} "
                                   f"(> {self.atol} x {scale:.3g}) on input shape {shape}")
            logger.info("exported %s for input shape %s to onnxruntime (max abs diff %.2g)",
                        type(self.pytorch_model).__name__, shape, diff)
            self.max_abs_diff = max(self.max_abs_diff, diff)
            self.graphs[shape] = predictor
        return self.graphs[shape]

    def forward(self, pixel_values: torch.Tensor, **kwargs):
        if kwargs:
            raise InputError(f"onnxruntime backend: forward takes pixel_values only, got {sorted(kwargs)}")
        logits = self._predictor(pixel_values)(pixel_values).to(pixel_values.device)
        return OnnxOutput(logits=logits)

    def infer(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """`MedPreTrainedModel.infer` with this model's forward (the wrapped model's inferer and settings)."""
        return type(self.pytorch_model).infer(self, pixel_values, **kwargs)


class OnnxOutput(dict):
    """The forward output: `.logits` (float32, on the input's device), as a medhub model's output has."""

    @property
    def logits(self) -> torch.Tensor:
        return self["logits"]


__all__ = ["OnnxPredictor", "OnnxRuntimeModel", "export_onnx"]
