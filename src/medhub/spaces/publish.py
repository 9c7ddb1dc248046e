"""`medhub spaces build` and `medhub spaces push`: the zoo's Space repos, complete, and on the Hub.

- `build_spaces(out, ids, org, data_dir)` writes `<out>/<id>/` for each id (default: every catalogue checkpoint):
  the text files of `medhub.spaces.repo`, medhub's wheel and the examples cut from `data_dir` (default
  MEDHUB_DATA_DIR or ../shared/data). The wheel is built once, by pip from medhub's source checkout (the one this
  module runs from: an editable install or PYTHONPATH=src), with the project's build backend (hatchling; without
  it installed, pip fetches it into an isolated build environment).
- `push_spaces(org, ids, token, data_dir)`: the model repos first (`medhub.zoo.build.push`, the zoo push: the
  weights each Space loads), then each Space, built for `<org>` into a temporary folder and uploaded as the Space
  repo `<org>/<id>` (gradio SDK), which then holds exactly that folder's files.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, HubError
from ..logging_utils import get_logger
from ..shared_data import ENV_VAR as DATA_ENV_VAR
from ..shared_data import data_dir as shared_data_dir
from ..zoo.catalog import CHECKPOINTS, checkpoint
from .repo import DEFAULT_ORG, space_texts, wheel_name, write_examples

logger = get_logger("spaces.publish")


def source_dir() -> Path:
    """The medhub source checkout this module runs from (the folder holding pyproject.toml and src/medhub)."""
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and 'name = "medhub"' in pyproject.read_text(encoding="utf-8")):
        raise ConfigError("medhub spaces build: the Space's wheel is built from medhub's source checkout, and this "
                          f"medhub ({Path(__file__).resolve().parents[1]}) is not one; run it from a checkout "
                          "(pip install -e . or PYTHONPATH=src)")
    return root


def build_wheel(into: Path) -> Path:
    """medhub's wheel, built by `pip wheel` from the source checkout into `into`; its path."""
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(into)]
    if importlib.util.find_spec("hatchling") is not None:  # the backend is here: no isolated build environment
        command.append("--no-build-isolation")
    done = subprocess.run([*command, str(source_dir())], capture_output=True, text=True)
    wheel = into / wheel_name()
    if done.returncode != 0 or not wheel.is_file():
        raise ConfigError(f"building medhub's wheel failed (exit {done.returncode}; expected {wheel.name}):\n"
                          f"{(done.stderr or done.stdout)[-2000:]}")
    return wheel


def build_spaces(out: str | Path = "spaces", ids: Sequence[str] | None = None, org: str = DEFAULT_ORG,
                 data_dir: str | Path | None = None) -> list[Path]:
    """Write (or refresh) the Space folder `<out>/<id>` of each id; returns the folders."""
    entries = [checkpoint(i) for i in ids] if ids else list(CHECKPOINTS)
    data = Path(data_dir) if data_dir else shared_data_dir()
    if data is None and any(e.space_examples for e in entries):
        raise ConfigError(f"medhub spaces build: the Spaces' examples are cut from ../shared/data, which was not "
                          f"found (set {DATA_ENV_VAR} or pass --data)")
    folders = []
    with tempfile.TemporaryDirectory(prefix="medhub-wheel-") as scratch:
        wheel = build_wheel(Path(scratch))
        for entry in entries:
            folder = Path(out) / entry.id
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in space_texts(entry, org).items():
                (folder / name).write_text(text, encoding="utf-8")
            for stale in folder.glob("medhub-*.whl"):
                stale.unlink()
            shutil.copyfile(wheel, folder / wheel.name)
            examples = write_examples(entry, data, folder) if data is not None else []
            logger.info("built Space %s: %s, %d example file(s), serving %s/%s", folder, wheel.name, len(examples),
                        org, entry.id)
            folders.append(folder)
    return folders


def push_spaces(org: str, ids: Sequence[str] | None = None, token: str | None = None,
                data_dir: str | Path | None = None) -> list[str]:
    """The zoo push (model repos `<org>/<id>`), then the Space repos `<org>/<id>`; returns the Space repo ids."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors

    from ..zoo import build as zoo_build  # the training stack: imported only when pushing

    names = [checkpoint(i).id for i in ids] if ids else [c.id for c in CHECKPOINTS]
    for repo in zoo_build.push(org, token=token, names=names):
        logger.info("pushed model repo %s", repo)
    api = HfApi(token=token)
    pushed = []
    with tempfile.TemporaryDirectory(prefix="medhub-spaces-") as scratch:
        for folder in build_spaces(scratch, names, org=org, data_dir=data_dir):
            repo = f"{org}/{folder.name}"
            try:
                api.create_repo(repo, repo_type="space", space_sdk="gradio", exist_ok=True)
                api.upload_folder(repo_id=repo, repo_type="space", folder_path=folder, delete_patterns=["*"],
                                  commit_message=f"medhub spaces push {folder.name}")
            except hf_errors.HfHubHTTPError as err:
                raise HubError(f"push of the Space {repo} failed: {str(err)[:400]}") from err
            pushed.append(repo)
    return pushed


__all__ = ["build_spaces", "build_wheel", "push_spaces", "source_dir"]
