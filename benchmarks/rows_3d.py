"""Row 4: whole-volume 3D inference of a 240x240x155 BraTS volume, medhub sliding window vs MONAI's.

Same network (the zoo Attention U-Net 3D, or its reference config), ROI 96^3, overlap 0.5, Gaussian weighting
(sigma 0.125 of the ROI), windows 2 per batch. Each run is a fresh child process so that its peak RSS is its
own; runs alternate medhub / MONAI.
"""

from __future__ import annotations

import json

from common import EMULATED_BF16_NOTE, Table, bf16_runs_here, run_child

CHILD = r'''
import json, sys, time, torch
sys.argv = ["x"]
torch.set_num_threads({threads})
import nibabel as nib, medhub
from common import SHARED_DATA, current_peak_rss_mb, peak_rss_mb, reset_peak_rss, zoo_or_reference
kind = "{kind}"
torch.manual_seed(0)
model, source = zoo_or_reference("attention-unet-brats")
subject = SHARED_DATA / "brats2015-examples" / "brats_2013_pat0003_1"
vol = torch.stack([torch.from_numpy(nib.load(subject / f).get_fdata(dtype="float32"))
                   for f in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")])[None]
roi = {roi}
if {quick}:
    vol = vol[..., :96, :96, :64]
if kind == "monai":
    from monai.inferers import sliding_window_inference
    def predictor(x):
        return model(pixel_values=x).logits
    def run():
        with torch.inference_mode():
            return sliding_window_inference(vol, roi, 2, predictor, overlap=0.5, mode="gaussian", sigma_scale=0.125)
else:
    from medhub.acceleration import FastPredictor, optimize_for_inference
    from medhub.inference import sliding_window_inference
    precision = "bf16" if kind == "medhub-bf16" else "fp32"
    fast = optimize_for_inference(model, torch.randn(2, 2, roi, roi, roi))
    predictor = FastPredictor(fast, precision=precision)
    def run():
        return sliding_window_inference(predictor, vol, roi, overlap=0.5, mode="gaussian", sigma_scale=0.125,
                                        batch_size=2)
with torch.inference_mode():  # warm-up: one batch of windows
    model(pixel_values=vol[..., :roi, :roi, :roi].repeat(2, 1, 1, 1, 1))
process_peak = current_peak_rss_mb()  # VmHWM: ru_maxrss is inherited from the parent across fork+exec
reset_peak_rss()
start = time.perf_counter()
out = run()
seconds = time.perf_counter() - start
torch.save(out.argmax(1).to(torch.uint8), "{tmp}/" + kind + ".pt")
print(json.dumps({{"seconds": seconds, "peak_rss_mb": max(process_peak, current_peak_rss_mb()),
                  "inference_peak_rss_mb": current_peak_rss_mb(), "source": source,
                  "shape": list(vol.shape)}}))
'''


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    import tempfile

    import torch

    threads = torch.get_num_threads()
    roi = 64 if quick else 96
    runs = max(1, repeats)  # one whole volume is 7-30 s on an idle 2-core machine
    kinds = ["medhub-fp32", "monai", "medhub-bf16"] if bf16_runs_here() else ["medhub-fp32", "monai"]
    results = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            for kind in kinds:
                r = run_child(CHILD.format(threads=threads, kind=kind, roi=roi, tmp=tmp, quick=quick))
                results[kind].append(r)
                print(f"  row 4 {kind}: {json.dumps(r)}", flush=True)
        masks = {k: torch.load(f"{tmp}/{k}.pt") for k in kinds}
    same = float((masks["medhub-fp32"] == masks["monai"]).float().mean())

    def cell(kind):
        secs = [r["seconds"] for r in results[kind]]
        rss = max(r.get("inference_peak_rss_mb", r["peak_rss_mb"]) for r in results[kind])
        return sorted(secs)[len(secs) // 2], min(secs), max(secs), rss

    table = Table("Row 4: 3D whole-volume sliding window, BraTS 240x240x155 (s: median [min-max]; peak RSS MB)",
                  ["implementation", "wall s", "peak RSS MB during inference", "speed-up vs MONAI", "voxels agreeing "
                                                                                                    "with MONAI fp32"])
    m_med = cell("monai")[0]
    agreement = {"monai": "-", "medhub-fp32": f"{100 * same:.4f} %"}
    if "medhub-bf16" in kinds:
        same_bf16 = float((masks["medhub-bf16"] == masks["medhub-fp32"]).float().mean())
        agreement["medhub-bf16"] = f"{100 * same_bf16:.3f} % (vs medhub fp32)"
    for kind, agree in agreement.items():
        med, lo, hi, rss = cell(kind)
        table.add(kind, f"{med:.1f} [{lo:.1f}-{hi:.1f}]", f"{rss:.0f}", f"{m_med / med:.2f}x", agree)
    table.note(f"Network: {results['monai'][0]['source']}; volume {results['monai'][0]['shape']} (FLAIR + T1c of "
               f"brats_2013_pat0003_1); ROI {roi}^3, overlap 0.5, Gaussian sigma 0.125, 2 windows per batch; "
               f"{runs} run(s) of each, alternating, each in a fresh process; peak RSS = VmHWM reset after loading "
               f"and warm-up, i.e. the peak while the sliding window runs.")
    table.note("medhub-fp32 = `medhub.inference.sliding_window_inference` with `FastPredictor(optimize_for_inference"
               "(model))` (conv-BN folding + channels_last_3d, exact to 1e-4); MONAI = `monai.inferers."
               "sliding_window_inference` with the eager model. medhub-bf16 adds `precision='bf16'`.")
    if "medhub-bf16" not in kinds:
        table.note(EMULATED_BF16_NOTE)
    if runs < 5:
        table.note(f"{runs} run(s) per implementation (--repeats {repeats}), fewer than the suite's 5.")
    return table
