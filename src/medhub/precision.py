"""Which precision a model runs in: "fp32" (exact), "bf16" (autocast) or "auto" (bf16 only where it is native).

bf16 pays only on hardware that computes it natively: a CPU with AVX512-BF16 or AMX or a GPU with bfloat16 support.
Elsewhere PyTorch emulates it, which is several times *slower* than float32 (issue 18, a 2-core AMD EPYC without
AVX-512: CheXNet batch 8 at 224x224 took 3.6 s per batch in compiled bf16 against 0.53 s compiled fp32, and its
first call compiled for 101 s). On a CPU, native means all of what PyTorch reports: oneDNN can run bf16
(`torch.ops.mkldnn._is_mkldnn_bf16_supported()`, which honours an `ONEDNN_MAX_CPU_ISA` cap), the CPU has the
AVX512-BF16 or AMX instructions (`torch.cpu._is_avx512_bf16_supported()` / `_is_amx_tile_supported()`), and
oneDNN is not capped below them. oneDNN's own check also holds on AVX-512 without BF16 (Skylake/Cascade Lake, or
`ONEDNN_MAX_CPU_ISA=AVX512_CORE`), where it emulates bf16: measured on this project's AMD EPYC capped that way, a
64-channel 3x3 convolution (batch 8, 56x56, 1 thread, median of 5 on a shared machine) took 115 ms in bf16 against
33 ms in fp32 (uncapped: 24 ms in bf16; capped to AVX2: 432 ms against 64 ms). So:

- `resolve_precision("auto", device)` is "bf16" where `native_bf16(device)` holds, else "fp32";
- an explicit "bf16" on hardware without native bf16 is honoured but warns (`SlowPrecisionWarning`) with that
  measured cost;
- library calls keep "fp32" as their default (their outputs are exact and tests compare them bit for bit); the
  user-facing paths (`medhub predict`, the Spaces, the demo, recipes with `bf16: auto`) default to "auto".
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings

import torch

from .errors import InputError

PRECISIONS = ("fp32", "bf16")  # what a model runs in
PRECISION_CHOICES = ("auto", *PRECISIONS)  # what a caller may ask for

EMULATED_BF16_COST = ("bf16 is emulated on this CPU (no AVX512-BF16/AMX, or oneDNN capped below them by "
                      "ONEDNN_MAX_CPU_ISA): measured on a 2-core AMD EPYC without "
                      "them, CheXNet batch 8 at 224x224 ran 3.6 s per batch in compiled bf16 against 0.53 s in "
                      "compiled fp32 (6.8x slower), and its first call compiled for 101 s; precision='auto' or "
                      "'fp32' is faster and exact here")


class SlowPrecisionWarning(UserWarning):
    """bf16 was asked for on hardware that emulates it (slower than float32)."""


def check_precision(precision: str, choices: tuple[str, ...] = PRECISION_CHOICES) -> str:
    if precision not in choices:
        raise InputError(f"precision: expected one of {choices}, got {precision!r}")
    return precision


def native_bf16(device_type: str = "cpu") -> bool:
    """True when `device_type` computes bfloat16 natively: CUDA with bf16 support, or a CPU where oneDNN has
    AVX512-BF16 / AMX kernels."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return _onednn_bf16() and _bf16_instructions()
    return False


def _onednn_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA) below the AVX512-BF16 instructions.
_CAPS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def _bf16_instructions() -> bool:
    """On x86: the CPU has AVX512-BF16 or AMX and oneDNN is not capped below them (other CPUs: True, oneDNN's
    check decides)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i686"):
        return True
    cpu = torch.cpu
    has = getattr(cpu, "_is_avx512_bf16_supported", lambda: True)() or getattr(cpu, "_is_amx_tile_supported",
                                                                                lambda: False)()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    return bool(has) and cap.strip().upper() not in _CAPS_WITHOUT_BF16


def resolve_precision(precision: str = "fp32", device_type: str = "cpu") -> str:
    """"fp32" or "bf16" for a request of "auto", "fp32" or "bf16" on `device_type` (warns for emulated bf16)."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if native_bf16(device_type) else "fp32"
    if precision == "bf16" and not native_bf16(device_type):
        cost = EMULATED_BF16_COST if device_type == "cpu" else f"{device_type} has no native bf16"
        warnings.warn(f"precision='bf16': {cost}", SlowPrecisionWarning, stacklevel=3)
    return precision


def precision_context(precision: str = "fp32", device_type: str = "cpu"):
    """`torch.autocast` to bfloat16 when `precision` resolves to "bf16" on `device_type`; else a no-op context."""
    if resolve_precision(precision, device_type) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


__all__ = ["EMULATED_BF16_COST", "PRECISIONS", "PRECISION_CHOICES", "SlowPrecisionWarning", "check_precision",
           "native_bf16", "precision_context", "resolve_precision"]
