"""Row 8: ONNX export of each zoo model, max-abs-diff vs PyTorch, onnxruntime vs PyTorch latency."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import Table, alternate, recipe_config

import medhub
from medhub.acceleration import FastPredictor, optimize_for_inference

CASES = {  # zoo id -> a standard input (batch 1)
    "chexnet-pneumonia": (1, 1, 224, 224),
    "resnet18-pneumonia": None,
    "vgg16-pneumonia": None,
    "unet-isbi2012": (1, 1, 512, 512),
    "attention-unet-brats": (1, 2, 96, 96, 96),
    "deepmedic-brats": "context",  # one full-resolution context patch of a 29^3 output segment (see below)
}


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(pixel_values=x).logits


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    import onnxruntime as ort

    table = Table("Row 8: ONNX export and onnxruntime (ms per forward: median [min-max])",
                  ["model", "input", "export s", "max abs diff vs PyTorch", "PyTorch eager fp32",
                   "PyTorch medhub fast fp32", "onnxruntime", "ORT vs eager"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    ids = list(CASES)[:1] if quick else list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        for zoo_id in ids:
            config = recipe_config(zoo_id)
            model = medhub.MedModel.from_config(config).eval()
            if CASES[zoo_id] == "context":  # DeepMedic's one-tensor form: it cuts every pathway's input itself
                shape = (1, config.in_channels) + (model.context_size(9 if quick else 29),) * 3
            else:
                shape = CASES[zoo_id] or (1, config.in_channels, 224, 224)
                if quick:
                    shape = shape[:2] + tuple(min(s, 64) for s in shape[2:])
            x = torch.randn(shape)
            path = Path(tmp) / f"{zoo_id}.onnx"
            with torch.inference_mode():
                ref = model(pixel_values=x).logits.numpy()
            start = time.perf_counter()
            try:
                torch.onnx.export(_Logits(model).eval(), (x,), str(path), dynamo=False, input_names=["pixel_values"],
                                  output_names=["logits"], opset_version=17)
            except Exception as err:
                table.add(zoo_id, str(shape), f"FAILED: {type(err).__name__}: {str(err)[:120]}", "", "", "", "", "")
                continue
            export_s = time.perf_counter() - start
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            model.eval()  # the exporter restores the wrapper's mode; keep the model in eval regardless
            got = session.run(None, {"pixel_values": xn})[0]
            diff = float(np.abs(got - ref).max())
            fast = optimize_for_inference(model, x)
            t = alternate({"eager": lambda: FastPredictor(model, channels_last=False)(x),
                           "fast": lambda: FastPredictor(fast)(x),
                           "ort": lambda: session.run(None, {"pixel_values": xn})}, max(1, repeats))
            table.add(zoo_id, str(shape), f"{export_s:.1f}", f"{diff:.1e}", t["eager"].ms(), t["fast"].ms(),
                      t["ort"].ms(), f"{t['eager'].median / t['ort'].median:.2f}x faster")
    table.note("Exported with `torch.onnx.export(..., dynamo=False, opset_version=17)` (onnxscript is not installed "
               "for the dynamo exporter); onnxruntime CPUExecutionProvider with the same thread count. Models are "
               "built from recipes/zoo configs (random weights). DeepMedic is exported in its one-tensor form: a "
               "full-resolution context patch (`model.context_size(29)` per axis) from which the graph cuts the "
               "normal and subsampled pathways' inputs, predicting a 29^3 segment.")
    return table
