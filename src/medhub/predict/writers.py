"""What `medhub predict` writes, and how: every file under a temporary name first, then `os.replace`d into place
(a crash never leaves a half-written output); predictions.csv; the report of a run."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError

CSV_NAME = "predictions.csv"
TMP_PREFIX = ".medhub-tmp-"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) with a temporary name next to `path` (same extension), then os.replace it into place."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporary files left in `out_dir` by a killed run (their process is gone); return them."""
    removed = []
    for tmp in out_dir.glob(f"{TMP_PREFIX}*"):
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sync_to_disk(*paths: Path) -> None:
    """fsync each existing file (the rows appended to it so far reach the disk, not only the OS cache)."""
    for path in paths:
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def save_png(array: np.ndarray, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


INSTANCE_COLUMNS = ["label", "area", "centroid_y", "centroid_x", "mean_intensity"]


def instance_rows(instances: np.ndarray, intensity: np.ndarray) -> list[list]:
    """One row per instance label > 0 present: label, area (pixels), centroid (row, column; pixel centres at
    integers), mean of `intensity` over its pixels; from one `np.bincount` each."""
    if instances.shape != intensity.shape:
        raise InputError(f"instances {instances.shape} and intensity image {intensity.shape}: expected one shape")
    flat = instances.ravel().astype(np.int64)
    ys, xs = np.indices(instances.shape)
    area = np.bincount(flat)
    sums = [np.bincount(flat, weights=w.ravel().astype(np.float64), minlength=len(area))
            for w in (ys, xs, intensity)]
    return [[label, int(area[label]), *(f"{s[label] / area[label]:.3f}" for s in sums)]
            for label in range(1, len(area)) if area[label]]


def save_instance_csv(instances: np.ndarray, intensity: np.ndarray, path: Path) -> Path:
    """`<stem>_instances.csv`: INSTANCE_COLUMNS, one row per instance (`instance_rows`), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INSTANCE_COLUMNS)
    writer.writerows(instance_rows(instances, intensity))
    return atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))




class PredictionTable:
    """predictions.csv: the columns `input`, `predicted` (the label(s) at the weights' decision threshold, see
    `decide`), then one probability per label. Each row is appended and flushed to disk as it is made (a crash
    loses no finished row); an input predicted again gets a new row, and `close()` rewrites the file once,
    atomically, keeping each input's last row."""

    def __init__(self, path: Path, labels: list[str], overwrite: bool, threshold: Any = None,
                 activation: str = "softmax"):
        self.path, self.labels, self.header = path, list(labels), ["input", "predicted", *labels]
        self.threshold, self.activation = threshold, activation
        self.rows: dict[str, list[str]] = {}
        if path.is_file() and not overwrite:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header != self.header:
                    raise InputError(f"{path}: written for other columns ({header}); expected {self.header} - "
                                     "use another --out folder or --overwrite")
                self.rows = {row[0]: row for row in reader if row}
        if overwrite or not path.is_file():
            self._rewrite()

    def add(self, name: str, probs: np.ndarray) -> None:
        self.rows[name] = row = [name, self.decide(probs), *(f"{p:.6f}" for p in probs)]
        with open(self.path, "a", newline="", encoding="utf-8") as fh:  # closed: in the OS, whatever the process does
            csv.writer(fh, lineterminator="\n").writerow(row)

    def decide(self, probs: np.ndarray) -> str:
        """The predicted label(s): at the stored threshold for one-output, binary and multi-label models (multi-
        label: every label at or above it, joined by '|'), the top label otherwise; 0.5 where none is stored."""
        probs = np.asarray(probs, dtype=np.float64)
        threshold = np.broadcast_to(np.asarray(0.5 if self.threshold is None else self.threshold, np.float64),
                                    probs.shape)
        if self.activation == "sigmoid" and len(probs) > 1:
            return "|".join(label for label, p, t in zip(self.labels, probs, threshold) if p >= t)
        if len(probs) == 1:
            return self.labels[0] if probs[0] >= threshold[0] else f"not {self.labels[0]}"
        if len(probs) == 2:
            return self.labels[1] if probs[1] >= threshold[1] else self.labels[0]
        return self.labels[int(probs.argmax())]

    def close(self) -> None:
        """Rewrite the file once without the rows an input's later row replaced (atomic)."""
        with open(self.path, newline="", encoding="utf-8") as fh:
            on_disk = sum(1 for row in csv.reader(fh) if row) - 1
        if on_disk != len(self.rows):
            self._rewrite()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows.values())
        atomic_write(self.path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


@dataclass
class PredictionReport:
    """What a run did: inputs predicted (name -> output files), skipped (outputs existed), failed (name, error)."""

    predicted: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def output_paths(task: str, dims: int, out_dir: Path, stem: str, instances: bool = False,
                 heatmaps: bool = True) -> list[Path]:
    """The files one case writes (classifiers also add a row to predictions.csv, and a heatmap when asked)."""
    if task == "image-classification":
        return [out_dir / f"{stem}_heatmap.png"] if heatmaps else []
    if dims == 2:
        extra = [out_dir / f"{stem}_instances.png", out_dir / f"{stem}_instances_overlay.png",
                 out_dir / f"{stem}_instances.csv"] if instances else []
        return [out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png", *extra]
    return [out_dir / f"{stem}_seg.nii.gz"]


__all__ = ["CSV_NAME", "INSTANCE_COLUMNS", "PredictionReport", "PredictionTable", "TMP_PREFIX", "atomic_write",
           "instance_rows", "output_paths", "remove_stale_temporaries", "save_instance_csv", "save_png",
           "sync_to_disk"]
