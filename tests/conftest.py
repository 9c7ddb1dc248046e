"""Shared test fixtures. Nothing here changes global state (env, logging, torch settings)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the checkout's tools/ (fuzzers, generators) for the tests that use them
    sys.path.insert(0, str(REPO_ROOT))

# The local Hub servers (olah, and the test-only write endpoint in front of it) as fixtures for every module.
from hub_servers import olah_server, write_endpoint  # noqa: E402, F401


def shared_data_dir() -> Path | None:
    """The real-data folder: $MEDHUB_DATA_DIR, else <repo>/../shared/data; None when neither exists."""
    env = os.environ.get("MEDHUB_DATA_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real-data folder (see its README.md); skips the test when it is absent."""
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("real data not found: set MEDHUB_DATA_DIR or provide <repo>/../shared/data")
    return folder
