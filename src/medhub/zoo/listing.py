"""`medhub zoo list`: every catalogued checkpoint with its task, data, headline metric, size and presence."""

from __future__ import annotations

import json
from pathlib import Path

from ..weights_info import check_weights_info
from .catalog import CHECKPOINTS, SIZE_BUDGET_MB, Checkpoint
from .local import find, total_mb, weights_mb, zoo_dir


def headline_value(checkpoint: Checkpoint, folder: Path | None = None) -> float | None:
    """The headline metric recorded with the present folder's weights (weights_info["metrics"]), or None."""
    folder = folder or find(checkpoint.id)[0]
    if folder is None:
        return None
    info = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("weights_info") or {}
    check_weights_info(info, f"{folder / 'config.json'}: weights_info")
    for metric in info.get("metrics") or []:
        if isinstance(metric, dict) and metric.get("name") == checkpoint.headline_metric:
            return float(metric["value"])
    return None


def format_table() -> str:
    rows = [("id", "model", "task", "data", "headline metric", "size", "present")]
    for c in CHECKPOINTS:
        folder, _ = find(c.id)
        value = headline_value(c, folder)
        rows.append((c.repo_id, c.short_title, c.task, c.data,
                     f"{c.headline} {'-' if value is None else f'{value:.4f}'}",
                     "-" if folder is None else f"{weights_mb(folder):.1f} MB", "yes" if folder else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    aliases = [f"medhub/{alias} -> {c.repo_id}" for c in CHECKPOINTS for alias in c.aliases]
    if aliases:
        lines.append("aliases: " + ", ".join(aliases))
    where = zoo_dir()
    lines.append(f"\nzoo folder: {where if where else 'none found (set MEDHUB_ZOO_DIR)'}; "
                 f"weights {total_mb():.1f} MB of the {SIZE_BUDGET_MB:.0f} MB budget")
    return "\n".join(lines)


__all__ = ["format_table", "headline_value"]
