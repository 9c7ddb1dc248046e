"""medhub benchmark suite: medhub against MONAI and the original DeepMedic; writes benchmarks/RESULTS.md.

Every row warms up, then runs medhub and its peer alternately (>= 5 repeats by default) with the thread count
fixed, and reports median [min-max] and the ratio. Nothing here is a test assertion.

    make bench                                           # the full suite
    python benchmarks/run.py --repeats 1 --quick         # a smoke run (small inputs, a few rows)
    python benchmarks/run.py --rows 1-3,7                # some rows only
    python benchmarks/run.py --rows 7,10 --isa avx2      # the same rows with the kernels capped to AVX2

`--isa avx2` re-runs this command in a child process with ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2 set
before torch is imported: on a CPU with AVX-512 it approximates one without (same cores, caches and memory; only
the instructions ATen's and oneDNN's kernels use are capped, and oneDNN then reports no native bf16). Every table
records the capability and the cap it ran under.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from common import ISA_CAPS, machine_info  # noqa: E402

ROWS = {
    "1-3": ("rows_2d", "2D inference vs MONAI"),
    "4": ("rows_3d", "3D sliding window vs MONAI"),
    "5": ("rows_deepmedic", "DeepMedic vs the original"),
    "6": ("rows_training", "training steps and data loaders"),
    "7": ("rows_loading", "loading and cold start"),
    "8": ("rows_onnx", "ONNX export and onnxruntime"),
    "9": ("rows_predict", "medhub predict on a folder vs bare batched"),
    "10": ("rows_auto", "precision='auto' and the prediction backends on this CPU"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (default 5)")
    parser.add_argument("--quick", action="store_true", help="small inputs and fewer cases (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated groups of {list(ROWS)}")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--isa", choices=["native", *ISA_CAPS], default="native",
                        help="cap the instruction set the kernels use (a child process with the caps set)")
    args = parser.parse_args()
    if args.isa != "native" and os.environ.get("MEDHUB_BENCH_ISA") != args.isa:  # the caps act before torch loads
        env = {**os.environ, **ISA_CAPS[args.isa], "MEDHUB_BENCH_ISA": args.isa}
        return subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode
    torch.set_num_threads(args.threads or torch.get_num_threads())
    torch.manual_seed(0)
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    before = machine_info()
    start = time.perf_counter()
    sections = []
    for key in wanted:
        module_name, title = ROWS[key]
        print(f"== rows {key}: {title}", flush=True)
        module = __import__(module_name)
        t0 = time.perf_counter()
        try:
            tables = module.run(args.repeats, args.quick, args.compile)
        except Exception as err:  # one broken row must not lose the others
            import traceback

            traceback.print_exc()
            sections.append(f"## Rows {key}: {title}\n\nFAILED: {type(err).__name__}: {err}\n")
            continue
        for table in tables if isinstance(tables, list) else [tables]:
            sections.append(table.markdown())
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    after = machine_info()
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    lines = [
        "# medhub benchmark results",
        "",
        f"Command: `{command.strip()}` (total {time.perf_counter() - start:.0f} s)",
        "",
        f"Machine: {before['cpu']}, {before['cores']} cores ({before['flags']}; {before['isa']}; PyTorch native bf16: "
        f"{'yes' if before['native_bf16'] else 'no'}, precision='auto' runs {before['auto']}); "
        f"torch {before['torch']}, "
        f"{torch.get_num_threads()} threads; Python {before['python']}. Repeats: {args.repeats} after one warm-up, "
        f"medhub and peer interleaved. Load average (1/5/15 min) at start "
        f"{'/'.join(f'{v:.2f}' for v in before['load'])}, at end {'/'.join(f'{v:.2f}' for v in after['load'])}: "
        "a load above the core count means another process shared the CPU and timings are noisier.",
        "",
        *sections,
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
