"""Run fuzz cases in a worker subprocess: a crash or a hang is caught and recorded with its case.

The parent sends case indices (one JSON line each) to `python -m tools.reliability.runner` (run from the repository
root), and waits at most `timeout` seconds for each answer. No answer in time: the case is a `hang`, the worker is
killed and a new one started. The worker dies (segfault, abort, killed for memory): the case is a `crash`. The
worker's address space is capped (`memory_mb`), so a reader that believes a huge declared size fails with
MemoryError (a `foreign-error`) instead of taking the machine down. The worker runs with smaller size limits
(`WORKER_LIMITS`: 64 MiB of decoded data, 64 MiB of checkpoint, 16 M parameters) so that a decompression bomb is
refused after inflating 64 MiB rather than 1 GiB, and a config's model never outgrows the capped address space;
the default limits themselves are tested in tests/test_resource_limits.py (parameters: test_config_validation.py).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .fuzz import FAILURES

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: the worker imports `tools.reliability` from it
WORKER_LIMITS = {"MEDHUB_MAX_DECODED_BYTES": str(64 << 20), "MEDHUB_MAX_CHECKPOINT_BYTES": str(64 << 20),
                 "MEDHUB_MAX_PARAMETERS": str(16 << 20)}  # 64 MiB of float32: configs asking more are refused


@dataclass
class CampaignResult:
    cases: dict[str, int] = field(default_factory=dict)              # target -> cases run
    outcomes: dict[str, Counter] = field(default_factory=dict)       # target -> outcome -> count
    failures: list[dict] = field(default_factory=list)               # every failing case record
    seconds: dict[str, float] = field(default_factory=dict)
    max_case_seconds: dict[str, float] = field(default_factory=dict)

    def failed(self, target: str | None = None) -> int:
        targets = [target] if target else list(self.outcomes)
        return sum(self.outcomes[t][o] for t in targets for o in FAILURES)


class _Worker:
    def __init__(self, data_dir: Path, seed_dir: Path, base_seed: int, memory_mb: int, nice: int):
        cmd = [sys.executable, "-m", "tools.reliability.runner", str(data_dir), str(seed_dir), str(base_seed),
               str(memory_mb)]
        env = {**os.environ, **WORKER_LIMITS,
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.log = Path(tempfile.mkstemp(prefix="medhub-fuzz-worker-", suffix=".log")[1])
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                         preexec_fn=(lambda: os.nice(nice)) if nice else None, bufsize=0)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        ready = self._line(timeout=300)  # imports and seeds
        if ready is None or json.loads(ready).get("ready") is not True:
            self.kill()
            raise RuntimeError(f"fuzz worker did not start: {ready!r}")

    def _line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def ask(self, target: str, index: int, timeout: float) -> dict | None:
        """The case's record; None on a hang; EOFError when the worker died."""
        try:
            self.proc.stdin.write(json.dumps([target, index]).encode() + b"\n")
        except BrokenPipeError:
            raise EOFError from None
        line = self._line(timeout)
        return None if line is None else json.loads(line)

    def stderr_tail(self, chars: int = 400) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return " ".join(text[-chars:].split())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.sel.close()
        self.log.unlink(missing_ok=True)


def run_campaign(data_dir: Path, targets: list[str], cases: int, *, base_seed: int = 0, timeout: float = 20.0,
                 memory_mb: int = 3072, nice: int = 19, seed_dir: Path | None = None, progress=None) -> CampaignResult:
    """Run `cases` cases of each target; every failing case is kept with its mutation for reproduction."""
    result = CampaignResult()
    with tempfile.TemporaryDirectory(prefix="medhub-fuzz-") as tmp:
        seed_dir = Path(seed_dir) if seed_dir else Path(tmp) / "seeds"
        worker = _Worker(data_dir, seed_dir, base_seed, memory_mb, nice)
        try:
            for target in targets:
                counts: Counter = Counter()
                start, slowest = time.monotonic(), 0.0
                for index in range(cases):
                    t0 = time.monotonic()
                    try:
                        record = worker.ask(target, index, timeout)
                        if record is None:
                            record = {"target": target, "index": index, "outcome": "hang",
                                      "detail": f"no answer within {timeout:.0f} s; worker killed"}
                            worker.kill()
                            worker = _Worker(data_dir, seed_dir, base_seed, memory_mb, nice)
                    except EOFError:
                        code = worker.proc.wait()
                        record = {"target": target, "index": index, "outcome": "crash",
                                  "detail": f"worker exited with status {code} during the case; "
                                            f"stderr: ...{worker.stderr_tail()}"}
                        worker.kill()
                        worker = _Worker(data_dir, seed_dir, base_seed, memory_mb, nice)
                    slowest = max(slowest, time.monotonic() - t0)
                    counts[record["outcome"]] += 1
                    if record["outcome"] in FAILURES:
                        result.failures.append(record)
                    if progress and (index + 1) % 500 == 0:
                        progress(f"{target}: {index + 1}/{cases} {dict(counts)}")
                result.cases[target] = cases
                result.outcomes[target] = counts
                result.seconds[target] = time.monotonic() - start
                result.max_case_seconds[target] = slowest
        finally:
            worker.kill()
    return result


def _worker_main(argv: list[str]) -> None:
    import resource
    import warnings

    data_dir, seed_dir, base_seed, memory_mb = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the answers
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    from .fuzz import build_seeds, run_case

    seeds = build_seeds(data_dir, seed_dir)
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    import logging

    logging.disable(logging.CRITICAL)
    work = Path(tempfile.mkdtemp(prefix="medhub-fuzz-case-"))
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        target, index = json.loads(line)
        try:
            record = run_case(target, index, base_seed, seeds, work)
        except Exception as err:  # noqa: BLE001 - a bug of the harness itself, not of medhub
            record = {"target": target, "index": index, "outcome": "harness-error", "detail": repr(err)[:300]}
        out.write(json.dumps(record, default=str) + "\n")


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
