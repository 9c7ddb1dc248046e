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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"medhub demo exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"medhub demo did not answer on {self.url} within {timeout} s:\n{self.log.read_text()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
