"""Row 10: what precision="auto" chooses on this CPU and what each prediction path costs (CheXNet, batch 8)."""

from __future__ import annotations

import warnings

import torch
from common import Table, alternate, zoo_or_reference

from medhub.acceleration import FastPredictor, optimize_for_inference
from medhub.precision import native_bf16, resolve_precision


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    model, where = zoo_or_reference("chexnet-pneumonia")
    size = 64 if quick else 224
    x = torch.randn(8, model.config.in_channels, size, size)
    table = Table(f"Row 10: precision='auto' and backends, CheXNet DenseNet-121 batch 8 at {size}^2 "
                  "(ms per batch: median [min-max])", ["path", "runs", "ms per batch", "max abs diff vs eager fp32",
                                                       "vs eager fp32"])
    fast = optimize_for_inference(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # explicit bf16 on a CPU that emulates it: the row measures that cost
        paths = {"eager fp32": (lambda v: FastPredictor(model, channels_last=False)(v), "fp32"),
                 "fast fp32 (optimize_for_inference)": (FastPredictor(fast), "fp32"),
                 "fast, precision='auto'": (FastPredictor(fast, precision="auto"), resolve_precision("auto")),
                 "fast, precision='bf16'": (FastPredictor(fast, precision="bf16"), "bf16")}
        try:
            ort = optimize_for_inference(model, x, backend="onnxruntime")
            paths["onnxruntime fp32 (backend='onnxruntime')"] = (lambda v: ort(pixel_values=v).logits, "fp32")
        except Exception as err:  # onnxruntime missing: the row says so
            table.note(f"onnxruntime backend not measured: {type(err).__name__}: {err}")
        with torch.inference_mode():
            reference = model(pixel_values=x).logits
        diffs = {name: float((fn(x) - reference).abs().max()) for name, (fn, _) in paths.items()}
        times = alternate({name: (lambda fn=fn: fn(x)) for name, (fn, _) in paths.items()}, repeats)
    eager = times["eager fp32"].median
    for name, (_, runs) in paths.items():
        table.add(name, runs, times[name].ms(), f"{diffs[name]:.1e}", f"{eager / times[name].median:.2f}x")
    table.note(f"Model: {where}. PyTorch reports native bf16 (AVX512-BF16/AMX): {native_bf16('cpu')}, so 'auto' "
               f"runs {resolve_precision('auto')} here; on a CPU without it 'auto' is the exact fp32 fast path "
               "(issue 18 measured emulated bf16 at 3.6 s per batch against 0.53 s compiled fp32 on such a CPU).")
    return table
