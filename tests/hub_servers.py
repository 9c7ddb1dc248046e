"""Real local Hub servers for the hub tests, all on 127.0.0.1, and a way to run the client against them.

- `OlahServer`: the PyPI mirror server olah in offline mode, serving git repos laid out as
  `<mirrors>/models/<org>/<repo>` (made with `make_repo`) through the Hub's HTTP API;
- `hub_write_endpoint.serve`: the test-only write API in front of olah (see that module);
- `run_client`: runs a client script in a fresh Python process whose environment points HF_ENDPOINT at the
  local server (or at a closed 127.0.0.1 port), because huggingface_hub reads HF_ENDPOINT/HF_HUB_OFFLINE
  at import time. A test never reaches a non-loopback address.

Client processes cost ~4 s each (importing torch/transformers), so one process runs many named cases
(`@case("name")`) and the tests assert on each case's recorded outcome.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hub_write_endpoint import commit_files, init_repo, serve

TESTS_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


closed_port = free_port  # bound then released: nothing listens there, connections are refused


def make_repo(mirrors: Path, repo_id: str, commits: list[dict[str, bytes]], *, tags: dict[str, int] | None = None,
              branches: dict[str, dict[str, bytes]] | None = None) -> list[str]:
    """A git repo olah serves: `commits` in order on main (files add to/replace the previous tree).

    tags: name -> index of the commit on main; branches: name -> files committed on top of the first commit.
    Returns the commit shas of main, in order.
    """
    repo = mirrors / "models" / repo_id
    init_repo(repo)
    shas: list[str] = []
    for i, files in enumerate(commits):
        shas.append(commit_files(repo, "refs/heads/main", files, f"commit {i}", parent=shas[-1] if shas else None))
    for name, index in (tags or {}).items():
        subprocess.run(["git", "-C", str(repo), "tag", name, shas[index]], check=True)
    for name, files in (branches or {}).items():
        commit_files(repo, f"refs/heads/{name}", files, f"branch {name}", parent=shas[0])
    return shas


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


class OlahServer:
    """olah in offline mode over `mirrors`; metadata reuse is off so new commits are served at once."""

    def __init__(self, workdir: Path):
        self.mirrors = workdir / "mirrors"
        self.mirrors.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "olah.toml"
        config.write_text(textwrap.dedent(f"""\
            [basic]
            host = "127.0.0.1"
            port = {self.port}
            repos-path = "{workdir / 'olah-cache'}"
            mirrors-path = ["{self.mirrors}"]
            metadata-cache-ttl = 0
            [accessibility]
            offline = true
            """))
        self.log = open(workdir / "olah.log", "wb")
        self.proc = subprocess.Popen([str(VENV_BIN / "olah-cli"), "-c", str(config)], cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah exited with {self.proc.returncode}; see {workdir / 'olah.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"olah did not listen on {self.url} within 30 s")
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def olah_server(tmp_path_factory):
    server = OlahServer(tmp_path_factory.mktemp("olah"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def write_endpoint(olah_server):
    """The write API + read proxy in front of `olah_server`, writing into the repos olah serves."""
    server = serve(free_port(), olah_server.mirrors, olah_server.port)
    yield server
    server.shutdown()
    server.server_close()


PRELUDE = """
import json, logging, os, sys
sys.path.insert(0, {tests_dir!r})
import medhub, tiny_model
from tiny_model import digest
RESULTS = {{}}

class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())

def case(name):
    '''Run fn now; record its return value or the error it raised, and the medhub log lines.'''
    def run(fn):
        capture = _Capture()
        logging.getLogger("medhub").addHandler(capture)
        try:
            RESULTS[name] = {{"ok": fn()}}
        except Exception as err:
            RESULTS[name] = {{"error": type(err).__name__, "message": str(err),
                             "mro": [c.__name__ for c in type(err).__mro__]}}
        finally:
            logging.getLogger("medhub").removeHandler(capture)
        RESULTS[name]["log"] = capture.lines
        return fn
    return run
"""


def run_client(script: str, *, endpoint: str, hf_home: Path, offline: bool = False, zoo_dir: Path | None = None,
               extra_env: dict[str, str] | None = None, timeout: float = 180) -> dict:
    """Run `script` (cases, see PRELUDE) in a fresh interpreter against `endpoint`; return the cases' outcomes."""
    assert endpoint.startswith("http://127.0.0.1:"), endpoint  # never a non-loopback address
    Path(hf_home).mkdir(parents=True, exist_ok=True)
    result_file = Path(hf_home) / f"results-{time.monotonic_ns()}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "MEDHUB_"))}
    env.update({
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "10",
        "MEDHUB_ZOO_DIR": str(zoo_dir or Path(hf_home) / "no-zoo"),
        "NO_PROXY": "127.0.0.1,localhost",
        **(extra_env or {}),
    })
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(var, None)
    code = PRELUDE.format(tests_dir=str(TESTS_DIR)) + textwrap.dedent(script) + (
        f"\nopen({str(result_file)!r}, 'w').write(json.dumps(RESULTS))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=hf_home, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0 or not result_file.is_file():
        raise AssertionError(f"client process failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    results = json.loads(result_file.read_text())
    results["_stderr"] = proc.stderr
    return results
