"""Row 6: training step throughput of the zoo U-Net and CheXNet recipes, and streaming data-loader throughput.

Training must not be input-bound: each `medhub.data` loader, streaming, must deliver samples faster than the
model consumes them (loader samples/s > training samples/s).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import EMULATED_BF16_NOTE, Table, alternate, bf16_runs_here, recipe_config

import medhub
from medhub.acceleration import precision_context


def _train_step(model, x, labels, precision):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def fn():
        opt.zero_grad(set_to_none=True)
        with precision_context(precision):
            loss = model(pixel_values=x, labels=labels).loss
        loss.backward()
        opt.step()
    return fn


def _loader_rate(name: str, limit: int) -> tuple[float, int]:
    """Samples/s of `medhub.data.load(name, 'train', streaming=True)`, each image decoded to a float tensor."""
    from medhub.data import load

    start = time.perf_counter()
    data = load(name, "train", streaming=True)
    n = 0
    for row in data:
        for value in row.values():
            if hasattr(value, "size") and hasattr(value, "mode"):  # PIL image
                torch.from_numpy(np.asarray(value, dtype=np.float32))
            elif isinstance(value, np.ndarray):
                torch.from_numpy(value.astype(np.float32))
        n += 1
        if n >= limit:
            break
    return n / (time.perf_counter() - start), n


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    table = Table("Row 6: training throughput (samples/s) and streaming loaders",
                  ["recipe / loader", "input", "fp32 step s", "bf16 step s", "fp32 samples/s", "bf16 samples/s",
                   "loader samples/s (streaming)", "input-bound?"])
    cases = [
        ("unet-isbi2012", "isbi2012", (2, 1, 128 if quick else 512, 128 if quick else 512), 16 if quick else 30),
        ("chexnet-pneumonia", "pneumoniamnist", (8 if quick else 64, 1, 48, 48), 64 if quick else 1024),
    ]
    for zoo_id, dataset, shape, limit in cases:
        torch.manual_seed(0)
        model = medhub.MedModel.from_config(recipe_config(zoo_id)).train()
        x = torch.randn(shape)
        if model.config.model_type == "medhub-chexnet":
            labels = torch.randint(0, model.config.num_labels, (shape[0],))
        else:
            labels = torch.randint(0, model.config.num_labels, (shape[0], *shape[2:]))
        steps = {"fp32": _train_step(model, x, labels, "fp32")}
        if bf16_runs_here():
            steps["bf16"] = _train_step(model, x, labels, "bf16")
        t = alternate(steps, max(1, repeats))
        rate, n = _loader_rate(dataset, limit)
        fastest = shape[0] / min(v.median for v in t.values())
        bf16 = (t["bf16"].s(), f"{shape[0] / t['bf16'].median:.1f}") if "bf16" in t else ("not run", "-")
        table.add(f"{zoo_id} / medhub.data.load('{dataset}', streaming=True)", str(shape), t["fp32"].s(), bf16[0],
                  f"{shape[0] / t['fp32'].median:.1f}", bf16[1], f"{rate:.0f} ({n} samples)",
                  "no" if rate > fastest else "YES")
    table.note("Training step = forward with the recipe's loss, backward, AdamW step, on random tensors of the "
               "recipe's batch and input size (model config from recipes/zoo/<id>.yaml). Loader rate = streaming "
               "iteration of the train split with every image decoded to a float tensor (no augmentation).")
    if not bf16_runs_here():
        table.note(EMULATED_BF16_NOTE)
    return table
