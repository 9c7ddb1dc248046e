"""The local model zoo: the embedded default for ids under `medhub/`, one folder per checkpoint in the Hub layout
(`config.json`, `model.safetensors`, `preprocessor_config.json`, `README.md`), named by the catalogue's id.

Where it is: the folder named by the environment variable MEDHUB_ZOO_DIR, else `model_zoo/` in the current
directory (a medhub checkout's root, where `make demo` / `make test` also set the variable). An installed
medhub has no local zoo: its `medhub/` ids come from the Hub. Aliases (`medhub/chexnet`) are the catalogue's.
"""

from __future__ import annotations

import os
from pathlib import Path

from .catalog import canonical_id

ENV_VAR = "MEDHUB_ZOO_DIR"
DEFAULT_FOLDER = "model_zoo"


def zoo_dir() -> Path | None:
    """The zoo folder in use, or None when there is none."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    candidate = Path.cwd() / DEFAULT_FOLDER
    return candidate if candidate.is_dir() else None


def find(name: str) -> tuple[Path | None, str]:
    """Folder of zoo model `name` (alias-aware), or (None, why not)."""
    root = zoo_dir()
    if root is None:
        return None, f"no local zoo (set {ENV_VAR}, or run from a medhub checkout with {DEFAULT_FOLDER}/)"
    if not root.is_dir():
        return None, f"zoo folder {root} does not exist"
    folder_name = canonical_id(name)
    folder = root / folder_name
    if (folder / "config.json").is_file():
        return folder, ""
    alias = f" (an alias of {folder_name!r})" if folder_name != name.removeprefix("medhub/") else ""
    return None, f"{root} has no model {name!r}{alias} (present: {', '.join(available(root)) or 'none'})"


def available(root: Path | None = None) -> list[str]:
    root = root or zoo_dir()
    if root is None or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6


def total_mb(root: Path | None = None) -> float:
    """MB of weights of every folder in the zoo (catalogued or not)."""
    root = root or zoo_dir()
    return sum(weights_mb(root / name) for name in available(root)) if root else 0.0


__all__ = ["DEFAULT_FOLDER", "ENV_VAR", "available", "find", "total_mb", "weights_mb", "zoo_dir"]
