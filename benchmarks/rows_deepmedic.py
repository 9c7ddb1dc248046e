"""Row 5: DeepMedic (released preset) training segments/s and whole-volume inference vs the original.

The original DeepMedic (TensorFlow 2.15 CPU, graph mode, its released configuration) was measured on this
2-core machine by the issue's author: 9.0 s per training iteration of batch 10 (1.11 segments/s, peak RSS
8.2 GB); 129-138 s of forward passes per 240x240x155 volume (about 0.6 s per 45^3 segment; 137 s per volume
with I/O, peak RSS 3.2 GB). Those numbers are quoted, not re-run here (no TensorFlow in this venv).
"""

from __future__ import annotations

import json

import torch

import medhub
from medhub.acceleration import precision_context

from common import Table, alternate, peak_rss_mb, run_child

ORIGINAL = {"train_seg_s": 1.11, "train_rss_mb": 8.2 * 1024, "volume_s": 137.0, "volume_forward_s": (129, 138),
            "volume_rss_mb": 3.2 * 1024, "segment_s": 0.6}

VOLUME_CHILD = r'''
import json, sys, time, torch
torch.set_num_threads({threads})
import nibabel as nib, numpy as np, medhub
from common import SHARED_DATA, current_peak_rss_mb, peak_rss_mb, reset_peak_rss
torch.manual_seed(0)
model = medhub.MedModel.from_config(medhub.DeepMedicConfig.released()).eval()
subject = SHARED_DATA / "brats2015-examples" / "{subject}"
start = time.perf_counter()
vol = torch.stack([torch.from_numpy(nib.load(subject / f).get_fdata(dtype="float32"))
                   for f in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")])
mask = torch.from_numpy(nib.load(subject / "brainmask.nii.gz").get_fdata(dtype="float32") > 0)
if {crop}:
    vol, mask = vol[:, 90:150, 90:150, 50:110], mask[90:150, 90:150, 50:110]
io = time.perf_counter() - start
process_peak = current_peak_rss_mb()  # VmHWM: ru_maxrss is inherited from the parent across fork+exec
reset_peak_rss()
start = time.perf_counter()
probs = model.segment_volume(vol, batch_size=10, progress=False, roi_mask=mask, precision="{precision}")
seconds = time.perf_counter() - start
torch.save(probs.argmax(0).to(torch.uint8), "{tmp}/{precision}.pt")
print(json.dumps({{"seconds": seconds, "io": io, "peak_rss_mb": max(process_peak, current_peak_rss_mb()),
                  "inference_peak_rss_mb": current_peak_rss_mb(), "shape": list(vol.shape)}}))
'''


def _training(repeats: int, quick: bool) -> tuple[dict, dict]:
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(medhub.DeepMedicConfig.released())
    model.train()
    batch = 2 if quick else 10
    sizes = model.segment_sizes((21, 21, 21))
    inputs = [torch.randn(batch, 2, *s) for s in sizes]
    labels = torch.randint(0, 5, (batch, 21, 21, 21))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def step(precision):
        def fn():
            opt.zero_grad(set_to_none=True)
            with precision_context(precision):
                out = model(inputs[0], subsampled_values=inputs[1:], labels=labels)
            out.loss.backward()
            opt.step()
        return fn

    t = alternate({"fp32": step("fp32"), "bf16": step("bf16")}, max(1, repeats))
    return t, {"batch": batch}


def _segment(repeats: int) -> dict:
    model = medhub.MedModel.from_config(medhub.DeepMedicConfig.released()).eval()
    sizes = model.segment_sizes((29, 29, 29))
    inputs = [torch.randn(10, 2, *s) for s in sizes]

    def fwd(precision):
        def fn():
            with torch.inference_mode(), precision_context(precision):
                model(inputs[0], subsampled_values=inputs[1:])
        return fn

    return alternate({"fp32": fwd("fp32"), "bf16": fwd("bf16")}, max(1, repeats))


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    import tempfile

    threads = torch.get_num_threads()
    table = Table("Row 5: DeepMedic released preset vs the original DeepMedic (TF 2.15 CPU, same 2-core machine)",
                  ["measurement", "original", "medhub fp32", "medhub bf16", "speed-up fp32 / bf16 (target 4x)"])
    t, info = _training(repeats, quick)
    seg = {k: info["batch"] / v.median for k, v in t.items()}
    table.add(f"training, 37^3 segments, batch {info['batch']}: s/iteration", "9.0", t["fp32"].s(), t["bf16"].s(),
              f"{seg['fp32'] / ORIGINAL['train_seg_s']:.2f}x / {seg['bf16'] / ORIGINAL['train_seg_s']:.2f}x")
    table.add("training segments/s", f"{ORIGINAL['train_seg_s']:.2f}", f"{seg['fp32']:.2f}", f"{seg['bf16']:.2f}", "")
    table.add("training peak RSS MB (this process, cumulative)", f"{ORIGINAL['train_rss_mb']:.0f}",
              f"{peak_rss_mb():.0f}", "", "")
    if not quick:
        s = _segment(repeats)
        table.add("inference, batch of 10 45^3 segments: s per segment", "0.6",
                  f"{s['fp32'].median / 10:.3f}", f"{s['bf16'].median / 10:.3f}",
                  f"{0.6 / (s['fp32'].median / 10):.2f}x / {0.6 / (s['bf16'].median / 10):.2f}x")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            results[precision] = run_child(VOLUME_CHILD.format(
                threads=threads, subject="brats_2013_pat0003_1", crop=quick, precision=precision, tmp=tmp),
                timeout=3600)
            print(f"  row 5 volume {precision}: {json.dumps(results[precision])}", flush=True)
        a, b = torch.load(f"{tmp}/fp32.pt"), torch.load(f"{tmp}/bf16.pt")
    agree = float((a == b).float().mean())
    fp, bf = results["fp32"], results["bf16"]
    table.add(f"whole volume {tuple(fp['shape'][1:])}, brain-mask tiles, 45^3 -> 29^3, batch 10: s (forward)",
              "129-138", f"{fp['seconds']:.1f}", f"{bf['seconds']:.1f}",
              f"{133.5 / fp['seconds']:.2f}x / {133.5 / bf['seconds']:.2f}x")
    table.add("whole volume incl. NIfTI reading: s", "137", f"{fp['seconds'] + fp['io']:.1f}",
              f"{bf['seconds'] + bf['io']:.1f}", "")
    table.add("whole volume peak RSS MB: process (during segment_volume)", f"{ORIGINAL['volume_rss_mb']:.0f}",
              f"{fp['peak_rss_mb']:.0f} ({fp['inference_peak_rss_mb']:.0f})",
              f"{bf['peak_rss_mb']:.0f} ({bf['inference_peak_rss_mb']:.0f})", "")
    table.add("bf16 vs fp32 label agreement (whole volume)", "", "", f"{100 * agree:.3f} % of voxels", "")
    table.note("Original numbers: quoted from the issue (measured on this machine; not re-run, no TensorFlow here). "
               "Speed-ups of the whole volume use the middle of 129-138 s. medhub weights are random (released "
               "architecture, 2.0M parameters): speed does not depend on them. Training = forward, the "
               "original's cross-entropy, backward, RMSprop step; bf16 = CPU autocast (weights and optimiser "
               "float32). Whole volume: `model.segment_volume(..., roi_mask=brainmask, precision=...)`, one run "
               "each in a fresh process (one run is minutes on 2 cores). medhub computes the original's function "
               "exactly (float32 within 1e-4): channels_last_3d activations, and the first FC layer convolves the "
               "x3 / x5 pathways on their coarse grid before repeating them (1.7x fewer multiply-adds overall).")
    return table
