"""The local model zoo: medhub's embedded default for ids under `medhub/`.

One folder per model in the Hub layout (`config.json`, `model.safetensors`, `preprocessor_config.json`,
`README.md`), found without configuration in a checkout (`<repo>/model_zoo/`) and overridable with the
environment variable MEDHUB_ZOO_DIR. `aliases.json` in the zoo maps extra ids to folders
(e.g. "chexnet" -> "chexnet-pneumonia").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ConfigError

ENV_VAR = "MEDHUB_ZOO_DIR"


def zoo_dir() -> Path | None:
    """The zoo folder in use, or None when there is none."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "model_zoo", here.parent / "model_zoo"):
        if candidate.is_dir():
            return candidate
    return None


def aliases(root: Path | None = None) -> dict[str, str]:
    """The zoo's alias table (alias -> folder name); a malformed file is an error, not an empty table."""
    root = root or zoo_dir()
    file = root / "aliases.json" if root is not None else None
    if file is None or not file.is_file():
        return {}
    try:
        table = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{file}: not readable JSON ({err})") from None
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise ConfigError(f"{file}: expected a JSON object mapping alias names to zoo folder names")
    return table


def find(name: str) -> tuple[Path | None, str]:
    """Folder of zoo model `name` (alias-aware), or (None, why not)."""
    root = zoo_dir()
    if root is None:
        return None, f"no zoo folder (set {ENV_VAR} or run from a medhub checkout)"
    if not root.is_dir():
        return None, f"zoo folder {root} does not exist"
    folder_name = aliases(root).get(name, name)
    folder = root / folder_name
    if (folder / "config.json").is_file():
        return folder, ""
    if folder_name != name:
        return None, f"{root / 'aliases.json'} maps {name!r} to {folder_name!r}, which {root} does not hold"
    return None, f"{root} has no model {name!r} (present: {', '.join(available(root)) or 'none'})"


def available(root: Path | None = None) -> list[str]:
    root = root or zoo_dir()
    if root is None or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
