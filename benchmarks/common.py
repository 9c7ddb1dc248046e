"""Shared helpers of the benchmark suite: machine info, alternating timing, peak RSS in a child process, rows."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_DATA = Path(os.environ.get("MEDHUB_SHARED_DATA", ROOT.parent / "shared" / "data"))


def machine_info() -> dict:
    cpu, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
                flags = " ".join(f for f in line.split(":", 1)[1].split() if f in wanted)
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    from medhub.precision import native_bf16, resolve_precision

    return {"cpu": cpu, "flags": flags, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "cores": os.cpu_count(), "load": load,
            "native_bf16": native_bf16("cpu"), "auto": resolve_precision("auto", "cpu"), "isa": isa_line()}


# What `benchmarks/run.py --isa avx2` sets before torch is imported: the instruction set ATen's vectorised kernels
# dispatch to, and the highest one oneDNN (convolutions, bf16) may use.
ISA_CAPS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


EMULATED_BF16_NOTE = ("bf16 not run: this CPU (or its ISA cap) has no native bf16, where bf16 is emulated and several "
                      "times slower than fp32 (precision='auto' runs fp32 here; row 10 times explicit bf16 once)")


def bf16_runs_here() -> bool:
    """Whether the rows time bf16: only where it is native (`medhub.precision.native_bf16`)."""
    from medhub.precision import native_bf16

    return native_bf16("cpu")


def isa_line() -> str:
    """The instruction sets the kernels use: ATen's dispatch capability and any cap set in the environment."""
    caps = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)]
    return (f"ATen kernels {torch.backends.cpu.get_cpu_capability()}; "
            + (f"capped by {' '.join(caps)} (an approximation of a CPU without AVX-512: same cores, caches and "
               "memory, only the instructions the kernels use are capped)" if caps else "no ISA cap"))


def machine_line(info: dict | None = None) -> str:
    """One line naming the machine a table was measured on: CPU, AVX-512/BF16/AMX flags, what PyTorch reports."""
    info = info or machine_info()
    return (f"Machine: {info['cpu']}, {info['cores']} cores, flags: {info['flags'] or 'no AVX-512/AMX'}; "
            f"{info['isa']}; PyTorch "
            f"native bf16: {'yes' if info['native_bf16'] else 'no (emulated)'}, so precision='auto' runs "
            f"{info['auto']}; torch {info['torch']}, {info['threads']} threads; load average at the table's start "
            f"{'/'.join(f'{v:.2f}' for v in info['load'])} (above the core count: the CPU was shared).")


@dataclass
class Timing:
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def ms(self) -> str:
        """median [min-max] in ms"""
        return f"{self.median * 1e3:.1f} [{min(self.times) * 1e3:.1f}-{max(self.times) * 1e3:.1f}]"

    def s(self) -> str:
        return f"{self.median:.2f} [{min(self.times):.2f}-{max(self.times):.2f}]"


def alternate(fns: dict, repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """Time every callable of `fns` `repeats` times, interleaved (a, b, c, a, b, c, ...) after `warmup` calls
    of each, so that a change of machine load hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing() for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[name].times.append(time.perf_counter() - start)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: writing 5 to /proc/self/clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def current_peak_rss_mb() -> float:
    """VmHWM of /proc/self/status (the peak since the last `reset_peak_rss`), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def run_child(code: str, timeout: float = 1800) -> dict:
    """Run python `code` in a fresh interpreter (same venv, same thread count); it must print one JSON line
    last. Returns that JSON plus the child's peak RSS in MB (`peak_rss_mb`)."""
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def gflops(model, x, **kwargs) -> float:
    """Forward GFLOPs (2 x multiply-adds) counted by torch.utils.flop_counter on one input."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x, **kwargs)
    return counter.get_total_flops() / 1e9


def recipe_config(zoo_id: str, **overrides):
    """The architecture of zoo checkpoint `zoo_id` (its catalogue record), with `overrides`."""
    from medhub.zoo import checkpoint

    return checkpoint(zoo_id).config(**overrides)


def zoo_or_reference(zoo_id: str, reference_config=None):
    """(model, where it came from): the zoo checkpoint when model_zoo/<zoo_id> exists, else random weights with
    the reference config (the table says which)."""
    import medhub

    folder = ROOT / "model_zoo" / zoo_id
    if (folder / "model.safetensors").is_file():
        return medhub.MedModel.from_pretrained(str(folder)).eval(), f"zoo medhub/{zoo_id} (trained weights)"
    config = reference_config if reference_config is not None else recipe_config(zoo_id)
    where = "the recipe config" if reference_config is None else "its reference config"
    return (medhub.MedModel.from_config(config).eval(),
            f"medhub/{zoo_id} built from {where} (zoo folder absent: random weights)")


class Table:
    """A markdown table plus the notes under it."""

    def __init__(self, title: str, header: list[str]):
        self.title, self.header, self.rows, self.notes = title, header, [], []
        self.machine = machine_line()

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])
        print(f"  {self.title}: " + " | ".join(self.rows[-1]), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes] + [f"- {self.machine}"]
        return "\n".join(lines) + "\n"
