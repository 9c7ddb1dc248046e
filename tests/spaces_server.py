"""Start `medhub demo` (the combined Gradio app) in a subprocess on a free 127.0.0.1 port, for the Spaces tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_MAX_FILE_SIZE = "8mb"  # the test server's upload limit (the demo's default is larger)
UPLOAD_GRACE_S = 1.5  # uploads deleted this long after their last request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    """The app served by `run_demo` in its own process; `temp_dir` is its GRADIO_TEMP_DIR (uploads land there)."""

    def __init__(self, data: Path, work: Path, models: list[str] | None = None, timeout: float = 180.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.temp_dir = work / "gradio"
        self.log = work / "server.log"
        env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(self.temp_dir),
                   MEDHUB_DEMO_MAX_FILE_SIZE=TEST_MAX_FILE_SIZE, MEDHUB_DEMO_QUEUE_SIZE="64",
                   MEDHUB_DEMO_UPLOAD_GRACE_S=str(UPLOAD_GRACE_S),
                   MEDHUB_EXAMPLES_DIR=str(data), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                   OMP_NUM_THREADS="2")
        code = ("import sys; from medhub.demo import run_demo; "
                f"sys.exit(run_demo(host='127.0.0.1', port={self.port}, models={models!r}))")
        self.process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                                        stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_until_serving(self.process, self.url, self.log, timeout, "medhub demo")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_process(self.process)


def wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float, what: str) -> None:
    """Return once the Gradio app of `process` answers `url`/config; raise with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    stop_process(process)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout} s:\n{log.read_text()[-4000:]}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
