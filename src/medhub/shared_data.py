"""Where medhub finds the real public data used by the demo, benchmarks and zoo recipes.

MEDHUB_DATA_DIR if set, else `../shared/data` beside the current directory (a medhub checkout's root, where
`make` runs).
Nothing from it is ever copied into the repository; callers skip cleanly when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MEDHUB_DATA_DIR"


def data_dir() -> Path | None:
    """The data folder, or None when it cannot be found."""
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
        return path if path.is_dir() else None
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def require_data_dir() -> Path:
    path = data_dir()
    if path is None:
        raise FileNotFoundError(
            f"medhub's example data was not found: set {ENV_VAR} to a folder laid out like ../shared/data "
            "(isbi2012-em/, brats2015-examples/, pneumoniamnist/, chest-xray-samples/)"
        )
    return path
