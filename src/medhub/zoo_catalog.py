"""The catalogue of medhub's zoo checkpoints: what each id is, what data it was trained on, and whether the
local zoo (see `medhub.zoo`) holds it. `medhub zoo list` prints it; `medhub zoo build` (see `zoo_build`) makes
the 2D entries from `recipes/zoo/<id>.yaml`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import zoo

SIZE_BUDGET_MB = 100.0  # all committed zoo weights together


@dataclass(frozen=True)
class ZooEntry:
    id: str
    family: str
    task: str
    data: str
    headline_metric: str  # what the table calls the headline metric
    metric_key: str       # its `name` in the card's weights_info["metrics"] (the `medhub evaluate` output)
    budget_mb: float      # the most its float16 weights may take


ZOO_ENTRIES = (
    ZooEntry("chexnet-pneumonia", "CheXNet DenseNet-121", "image-classification", "PneumoniaMNIST", "AUROC",
             "auroc", 15.0),
    ZooEntry("resnet18-pneumonia", "ResNet-18", "image-classification", "PneumoniaMNIST", "AUROC", "auroc", 23.0),
    ZooEntry("vgg16-pneumonia", "VGG-16", "image-classification", "PneumoniaMNIST", "AUROC", "auroc", 30.0),
    ZooEntry("unet-isbi2012", "U-Net 2D", "image-segmentation", "ISBI 2012 EM", "Rand error (watershed cells)",
             "rand_error_watershed", 16.0),
    ZooEntry("attention-unet-brats", "Attention U-Net", "image-segmentation", "BraTS 2015 examples",
             "whole-tumour Dice", "dice_whole_tumor", 10.0),
    ZooEntry("deepmedic-brats", "DeepMedic", "image-segmentation", "BraTS 2015 examples", "whole-tumour Dice",
             "dice_whole_tumor", 10.0),
)


def entry(name: str) -> ZooEntry:
    name = name.removeprefix("medhub/")
    name = zoo.aliases().get(name, name) if zoo.zoo_dir() else name
    for e in ZOO_ENTRIES:
        if e.id == name:
            return e
    raise KeyError(name)


def headline_value(e: ZooEntry) -> float | None:
    """The headline metric recorded in the present folder's card (weights_info), or None."""
    folder, _ = zoo.find(e.id)
    if folder is None:
        return None
    info = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("weights_info") or {}
    for metric in info.get("metrics") or []:
        if metric["name"] == e.metric_key:
            return float(metric["value"])
    return None


def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6


def total_mb() -> float:
    """MB of weights of every folder in the zoo (catalogued or not)."""
    root = zoo.zoo_dir()
    return sum(weights_mb(root / name) for name in zoo.available(root)) if root else 0.0


def format_table() -> str:
    rows = [("id", "model", "task", "data", "headline metric", "size", "present")]
    for e in ZOO_ENTRIES:
        folder, _ = zoo.find(e.id)
        value = headline_value(e)
        rows.append((f"medhub/{e.id}", e.family, e.task, e.data,
                     f"{e.headline_metric} {'-' if value is None else f'{value:.4f}'}",
                     "-" if folder is None else f"{weights_mb(folder):.1f} MB", "yes" if folder else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    where = zoo.zoo_dir()
    aliases = zoo.aliases(where) if where else {}
    if aliases:
        lines.append("aliases: " + ", ".join(f"medhub/{a} -> medhub/{t}" for a, t in sorted(aliases.items())))
    lines.append(f"\nzoo folder: {where if where else 'none found (set MEDHUB_ZOO_DIR)'}; "
                 f"weights {total_mb():.1f} MB of the {SIZE_BUDGET_MB:.0f} MB budget")
    return "\n".join(lines)
