"""The catalogue of medhub's zoo checkpoints: what each id is, what data it was trained on, and whether the
local zoo (see `medhub.zoo`) holds it. `medhub zoo list` prints it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import zoo


@dataclass(frozen=True)
class ZooEntry:
    id: str
    family: str
    task: str
    data: str
    headline_metric: str  # which metric the card leads with (its value comes from the card's evaluation)


ZOO_ENTRIES = (
    ZooEntry("chexnet-pneumonia", "CheXNet DenseNet-121", "image-classification", "PneumoniaMNIST", "AUROC"),
    ZooEntry("resnet18-pneumonia", "ResNet-18", "image-classification", "PneumoniaMNIST", "AUROC"),
    ZooEntry("vgg16-pneumonia", "VGG-16", "image-classification", "PneumoniaMNIST", "AUROC"),
    ZooEntry("unet-isbi2012", "U-Net 2D", "image-segmentation", "ISBI 2012 EM", "Rand error"),
    ZooEntry("attention-unet-brats", "Attention U-Net", "image-segmentation", "BraTS 2015 examples", "whole-tumour Dice"),
    ZooEntry("deepmedic-brats", "DeepMedic", "image-segmentation", "BraTS 2015 examples", "whole-tumour Dice"),
)


def _headline(entry: ZooEntry) -> str:
    folder, _ = zoo.find(entry.id)
    if folder is None:
        return "-"
    info = json.loads((folder / "config.json").read_text()).get("weights_info") or {}
    for metric in info.get("metrics") or []:
        if metric["name"] == entry.headline_metric:
            return f"{metric['value']:.4f}"
    return "-"


def _size(entry: ZooEntry) -> str:
    folder, _ = zoo.find(entry.id)
    if folder is None:
        return "-"
    return f"{sum(p.stat().st_size for p in folder.glob('*.safetensors')) / 1e6:.1f} MB"


def format_table() -> str:
    rows = [("id", "model", "task", "data", "headline metric", "size", "present")]
    for e in ZOO_ENTRIES:
        present = zoo.find(e.id)[0] is not None
        rows.append((f"medhub/{e.id}", e.family, e.task, e.data, f"{e.headline_metric} {_headline(e)}",
                     _size(e), "yes" if present else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    where = zoo.zoo_dir()
    lines.append(f"\nzoo folder: {where if where else 'none found (set MEDHUB_ZOO_DIR)'}")
    return "\n".join(lines)
