"""medhub benchmark suite: writes benchmarks/RESULTS.md.

Each row warms up, repeats the measurement, and reports median, min and max wall time with the thread
count fixed. Run with `make bench` or `python benchmarks/run.py [--repeats N] [--quick]`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import medhub

HERE = Path(__file__).resolve().parent


def machine_info() -> dict:
    cpu, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
                flags = " ".join(f for f in line.split(":", 1)[1].split() if f in wanted)
                break
    except OSError:
        pass
    return {"cpu": cpu, "flags": flags, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def timed(fn, repeats: int, warmup: int = 1) -> tuple[float, float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def inference_rows(repeats: int, quick: bool) -> list[tuple]:
    cases = [
        ("CheXNet DenseNet-121", medhub.CheXNetConfig(in_channels=3), (1, 3, 224, 224)),
        ("ResNet-18", medhub.ResNetConfig(depth=18, num_labels=2), (1, 3, 224, 224)),
        ("VGG-16 (gap head)", medhub.VGGConfig(depth=16, classifier_type="gap", num_labels=2), (1, 3, 224, 224)),
        ("U-Net paper (572 -> 388)", medhub.UNetConfig.paper(), (1, 1, 572, 572)),
        ("Attention U-Net 2D", medhub.AttentionUNetConfig(spatial_dims=2, in_channels=1, num_labels=2), (1, 1, 512, 512)),
        ("DeepMedic released (45^3 segment)", medhub.DeepMedicConfig.released(), (1, 2, 45, 45, 45)),
    ]
    if quick:
        cases = cases[:2]
    rows = []
    for name, config, shape in cases:
        model = medhub.MedModel.from_config(config).eval()
        x = torch.randn(*shape)
        if name.startswith("DeepMedic"):
            x = torch.randn(1, 2, *[model.context_size(29)[0]] * 3)

        def run():
            with torch.inference_mode():
                model(pixel_values=x)

        med, lo, hi = timed(run, repeats)
        rows.append((f"{name}, {tuple(x.shape)}", f"{med * 1000:.0f}", f"{lo * 1000:.0f}", f"{hi * 1000:.0f}"))
        print(rows[-1], flush=True)
    return rows


def loading_rows(repeats: int) -> list[tuple]:
    from safetensors.torch import load_file

    rows = []
    for name, config in (("CheXNet", medhub.CheXNetConfig()), ("U-Net paper", medhub.UNetConfig.paper())):
        with tempfile.TemporaryDirectory() as tmp:
            medhub.MedModel.from_config(config).save_pretrained(tmp)
            bare_model = medhub.MedModel.from_config(config)

            def bare():
                bare_model.load_state_dict(load_file(f"{tmp}/model.safetensors"))

            def medhub_load():
                medhub.MedModel.from_pretrained(tmp)

            b = timed(bare, repeats)
            m = timed(medhub_load, repeats)
            rows.append((f"{name}: from_pretrained vs bare safetensors load", f"{m[0] * 1000:.0f}",
                         f"{b[0] * 1000:.0f}", f"{m[0] / b[0]:.2f}"))
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="two rows only (smoke run)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    torch.manual_seed(0)
    info = machine_info()
    infer = inference_rows(args.repeats, args.quick)
    load = loading_rows(args.repeats)
    lines = [
        "# medhub benchmark results",
        "",
        f"Command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {info['cpu']} ({info['flags']}), torch {info['torch']}, {info['threads']} threads, "
        f"Python {info['python']}. Repeats: {args.repeats} after one warm-up; float32 eager, `torch.inference_mode`.",
        "",
        "## Inference latency (batch as shown)",
        "",
        "| model, input | median ms | min ms | max ms |",
        "|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in infer],
        "",
        "## Loading",
        "",
        "| case | medhub ms | bare ms | ratio |",
        "|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in load],
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
