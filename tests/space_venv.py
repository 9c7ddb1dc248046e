"""A Space folder installed and served the way the Hub does it: a fresh virtualenv, `pip install -r requirements.txt`
run in the folder, then `python app.py` with the Hub's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.

Why the virtualenv shares this interpreter's packages: a truly fresh install of a Space's requirements (torch,
gradio, transformers, datasets, ... from /opt/wheels and the package index, with constraints.txt) took 330 s
on the 2-core development machine (2026-12-02, shared with other jobs), too long for `make test`. So by default
the fresh virtualenv gets one `.pth` line naming a folder of links to this interpreter's installed packages (the
versions of constraints.txt), every one except medhub; pip then runs on the Space's requirements.txt with the
constraints and `--no-index`: it must find every requirement satisfied at a constrained version, and it installs
medhub, and only medhub, from the Space's own wheel. What this proves: the folder's requirements resolve, the
wheel installs and holds everything the app needs (no checkout, no ../shared/data), and the app serves from it.
What it does not: that the index would serve those versions to a fresh machine (constraints.txt pins them, and
`make test` installs them from the index the same way). Set MEDHUB_SPACE_TEST_FULL_INSTALL=1 to install
everything afresh instead (with pip inside the virtualenv, as the Hub does; minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

from spaces_server import free_port, stop_process, wait_until_serving

REPO_ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO_ROOT / "constraints.txt"
FULL_INSTALL = os.environ.get("MEDHUB_SPACE_TEST_FULL_INSTALL") == "1"
HIDDEN = ("medhub", "_editable_impl_medhub", "__editable__", "__pycache__")  # this checkout's medhub, not shared


def shared_packages(into: Path) -> Path:
    """A folder of links to this interpreter's installed packages, medhub's install excluded."""
    into.mkdir(parents=True, exist_ok=True)
    for site in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(site).iterdir():
            if not entry.name.startswith(HIDDEN) and not (into / entry.name).exists():
                (into / entry.name).symlink_to(entry)
    return into


def install_space(folder: Path, venv: Path, shared: Path | None, log: Path) -> Path:
    """A fresh virtualenv at `venv` with `folder`'s requirements.txt installed (pip run in `folder`, as the Hub
    runs it); returns the virtualenv's python. The pip output goes to `log`."""
    python = venv / "bin" / "python"
    base = [sys.executable, "-m", "venv"]
    if FULL_INSTALL or shared is None:
        subprocess.run([*base, str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install"]
    else:
        subprocess.run([*base, "--without-pip", str(venv)], check=True)
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "_shared_test_packages.pth").write_text(f"{shared}\n", encoding="utf-8")
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    with open(log, "w") as out:
        done = subprocess.run([*pip, "--disable-pip-version-check", "-r", "requirements.txt", "-c", str(CONSTRAINTS)],
                              cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"pip install -r requirements.txt failed in {folder}:\n{log.read_text()[-4000:]}")
    return python


class SpaceApp:
    """`python app.py` in `folder` with the virtualenv's python, served on a free 127.0.0.1 port."""

    def __init__(self, folder: Path, python: Path, work: Path, env: dict[str, str], timeout: float = 300.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = work / f"{folder.name}-app.log"
        self.timeout = timeout
        base = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}  # no PYTHONPATH, no MEDHUB_*
        self.process = subprocess.Popen(
            [str(python), "app.py"], cwd=folder, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            env={**base, "HOME": str(work / "home"), "GRADIO_SERVER_NAME": "127.0.0.1",
                 "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False",
                 "GRADIO_TEMP_DIR": str(work / "gradio"), "HF_HUB_DISABLE_TELEMETRY": "1",
                 "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "OMP_NUM_THREADS": "2", **env})

    def wait(self) -> SpaceApp:
        wait_until_serving(self.process, self.url, self.log, self.timeout, f"{self.log.name}: app.py")
        return self

    def config(self) -> str:
        with urllib.request.urlopen(self.url + "config", timeout=10) as response:
            return response.read().decode()

    def stop(self) -> None:
        stop_process(self.process)
