"""What produced each output of a `medhub predict` folder, and the lock that lets one run at a time write it.

`medhub-manifest.jsonl` in the output folder holds one JSON line per predicted case, appended (flushed, and
synced to disk after each batch) once the case's outputs are in place: the output `stem`, the `inputs`
(absolute path, size, mtime in ns), the `model` (id or folder as given), its `weights` (a SHA-256 of the
parameters and buffers in memory, so a retrained folder or another Hub revision never matches) and the
`settings` that change the numbers (tta, roi_size, overlap). The last line of a stem wins. A case is skipped
only when its stem's entry matches all of these exactly and its outputs exist; `dA/x.png` then `dB/x.png` into
one folder recomputes `x` (the input path differs) instead of keeping dA's masks under dB's name.

`folder_lock(out_dir)` holds `.medhub-predict.lock` (the `filelock` package: an OS file lock, released when the
process dies) for a whole run, so two concurrent `medhub predict` into one folder run one after the other and
the second sees the first's outputs; while waiting it says which folder it waits for.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from ..errors import InputError

MANIFEST_NAME = "medhub-manifest.jsonl"
LOCK_NAME = ".medhub-predict.lock"


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every parameter and buffer (what the model computes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def input_record(paths: list[Path]) -> list[dict[str, Any]]:
    """Absolute path, size and mtime (ns) of each input file (a DICOM series folder: of each file in it)."""
    records = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            stat = file.stat()
            records.append({"path": str(file.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return records


class OutputManifest:
    """The manifest of one output folder: `entries` (stem -> last entry), `outputs` (every file it produced)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        text = self.path.read_text(encoding="utf-8") if self.path.is_file() else ""
        # A killed run's partial last line is cut off before the next entry is appended.
        self._torn_at = len(text[:text.rfind("\n") + 1].encode()) if text and not text.endswith("\n") else None
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self.entries[str(entry["stem"])] = entry
            except (ValueError, KeyError, TypeError):
                if line.endswith("\n"):  # only the torn last line may be incomplete; anything else is damage
                    raise InputError(f"{self.path}: line {number} is not a manifest entry; delete the file "
                                     "(its outputs are then recomputed) or use another --out") from None

    @property
    def outputs(self) -> set[Path]:
        return {Path(p).resolve() for entry in self.entries.values() for p in entry.get("outputs", [])}

    def matches(self, stem: str, produced_by: dict[str, Any]) -> bool:
        entry = self.entries.get(stem)
        return entry is not None and all(entry.get(key) == value for key, value in produced_by.items())

    def record(self, stem: str, produced_by: dict[str, Any], outputs: list[Path]) -> None:
        entry = {"stem": stem, **produced_by, "outputs": [str(p.resolve()) for p in outputs]}
        self.entries[stem] = entry
        with open(self.path, "a", encoding="utf-8") as fh:
            if self._torn_at is not None:
                fh.truncate(self._torn_at)
                self._torn_at = None
            fh.write(json.dumps(entry, sort_keys=True) + "\n")


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock for the block (see the module docstring)."""
    lock = FileLock(str(out_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"medhub predict: {out_dir} is in use by another medhub predict; waiting for it to finish",
              file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


__all__ = ["LOCK_NAME", "MANIFEST_NAME", "OutputManifest", "folder_lock", "input_record", "weights_fingerprint"]
