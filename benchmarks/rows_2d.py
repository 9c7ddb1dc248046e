"""Rows 1-3: 2D inference of CheXNet, Attention U-Net and U-Net against MONAI, float32 and bf16."""

from __future__ import annotations

import numpy as np
import torch
from common import (
    EMULATED_BF16_NOTE,
    SHARED_DATA,
    Table,
    alternate,
    bf16_runs_here,
    gflops,
    recipe_config,
    zoo_or_reference,
)

import medhub
from medhub.acceleration import FastPredictor, optimize_for_inference


def _monai():
    from monai.networks import nets

    return nets


def _eval_data(kind: str, in_channels: int, n: int) -> torch.Tensor:
    """Real validation images for the bf16 accuracy delta: PneumoniaMNIST val (CheXNet), ISBI 2012 EM (U-Nets)."""
    if kind == "classifier":
        data = np.load(SHARED_DATA / "pneumoniamnist" / "pneumoniamnist_trainval.npz")["val_images"][:n]
        x = torch.from_numpy(data).float()[:, None] / 255.0
        x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        x = (x - 0.449) / 0.226
        return x.expand(-1, in_channels, -1, -1).contiguous()
    from PIL import Image

    files = sorted((SHARED_DATA / "isbi2012-em" / "train" / "image").iterdir())[:n]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255.0) for f in files])
    return ((x - x.mean()) / x.std())[:, None].expand(-1, in_channels, -1, -1).contiguous()


def _decisions(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return logits > 0 if multi_label else logits.argmax(1)


def _bf16_delta(model, kind: str, in_channels: int, size: int | None, multi_label: bool) -> str:
    """Share of decisions (labels or pixels) that bf16 changes vs float32: an upper bound of the accuracy delta."""
    x = _eval_data(kind, in_channels, 32 if kind == "classifier" else 2)
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.pad(x, [(size - x.shape[-1]) // 2] * 4, mode="reflect")
    changed, total = 0, 0
    for batch in x.split(8):
        a = _decisions(FastPredictor(model)(batch), multi_label)
        b = _decisions(FastPredictor(model, precision="bf16")(batch), multi_label)
        if a.shape != b.shape:
            raise RuntimeError("bf16 changed the output shape")
        changed += int((a != b).sum())
        total += a.numel()
    return f"{100 * changed / total:.2f} % of {total} decisions"


def cases(quick: bool):
    nets = _monai()
    chex, chex_src = zoo_or_reference("chexnet-pneumonia", recipe_config("chexnet-pneumonia", in_channels=3))
    c = chex.config
    yield dict(name="1. CheXNet DenseNet-121, batch 1", model=chex, source=chex_src,
               peer=nets.DenseNet121(spatial_dims=2, in_channels=c.in_channels, out_channels=c.num_labels),
               peer_name="MONAI DenseNet121", shape=(1, c.in_channels, 224, 224), kind="classifier")
    if not quick:
        yield dict(name="1. CheXNet DenseNet-121, batch 8", model=chex, source=chex_src,
                   peer=nets.DenseNet121(spatial_dims=2, in_channels=c.in_channels, out_channels=c.num_labels),
                   peer_name="MONAI DenseNet121", shape=(8, c.in_channels, 224, 224), kind="classifier")
    size = 128 if quick else 512
    att = medhub.MedModel.from_config(medhub.AttentionUNetConfig(
        spatial_dims=2, in_channels=1, num_labels=2, base_width=16, depth=4, deep_supervision=False)).eval()
    yield dict(name=f"2. Attention U-Net 2D (16..256, 4 poolings), {size}^2", model=att,
               source="reference config (Oktay et al. widths), random weights",
               peer=nets.AttentionUnet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                                       strides=(2, 2, 2, 2)),
               peer_name="MONAI AttentionUnet (same channels/strides)", shape=(1, 1, size, size), kind="segmenter")
    if quick:
        return
    paper = medhub.MedModel.from_config(medhub.UNetConfig.paper()).eval()
    yield dict(name="3a. U-Net paper config (64..1024, valid), 572^2 -> 388^2 (peer 512^2 -> 512^2)", model=paper,
               source="paper config, random weights",
               peer=nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2,
                                   features=(64, 128, 256, 512, 1024, 64),
                                   act="relu", norm=("batch", {})),
               peer_name="MONAI BasicUNet features 64..1024, ReLU, batch norm", shape=(1, 1, 572, 572),
               peer_shape=(1, 1, 512, 512), kind="segmenter")
    zoo_unet, zoo_src = zoo_or_reference("unet-isbi2012")
    zc = zoo_unet.config
    widths = tuple(zc.base_width * 2**i for i in range(zc.depth + 1))
    yield dict(name=f"3b. U-Net zoo config ({widths[0]}..{widths[-1]}, {zc.padding}), 512^2", model=zoo_unet,
               source=zoo_src,
               peer=_basic_unet(nets, widths),
               peer_name=f"MONAI BasicUNet features {widths} (two 3x3 conv + BN + ReLU per level, like medhub's; "
                         "MONAI `UNet` has one strided conv per level, ~1/10 of the FLOPs, so it is not the closest)",
               shape=(1, 1, 512, 512), kind="segmenter")


def _basic_unet(nets, widths):
    if len(widths) != 5:  # BasicUNet has exactly 4 poolings
        raise ValueError(f"MONAI BasicUNet needs 5 widths (4 poolings), the zoo config has {widths}")
    return nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(*widths, widths[0]), act="relu",
                          norm=("batch", {}))


def run(repeats: int, quick: bool, compile_: bool) -> Table:
    table = Table("Rows 1-3: 2D inference vs MONAI (ms per batch: median [min-max])",
                  ["case", "GFLOPs medhub / peer", "peer fp32", "medhub eager fp32", "medhub fast fp32 (max abs diff)",
                   "medhub ONNX Runtime fp32 (max abs diff)", "medhub bf16", "fp32 speed-up vs peer",
                   "fastest speed-up vs peer", "bf16: decisions changed"])
    for case in cases(quick):
        try:
            _run_case(table, case, repeats, compile_)
        except Exception as err:  # one failing case must not lose the others
            table.add(case["name"], f"FAILED: {type(err).__name__}: {str(err)[:200]}", *[""] * 8)
    _notes(table)
    if not bf16_runs_here():
        table.note(EMULATED_BF16_NOTE)
    return table


def _run_case(table: Table, case: dict, repeats: int, compile_: bool) -> None:
    torch.manual_seed(0)
    model, peer = case["model"], case["peer"].eval()
    x = torch.randn(case["shape"])
    xp = torch.randn(case.get("peer_shape", case["shape"]))
    fast = optimize_for_inference(model, x)
    with torch.inference_mode():
        eager_out = model(pixel_values=x).logits
    diff = float((FastPredictor(fast)(x) - eager_out).abs().max())
    fns = {
        "peer": lambda: FastPredictor(peer, channels_last=False)(xp),
        "eager": lambda: FastPredictor(model, channels_last=False)(x),
        "fast": lambda: FastPredictor(fast)(x),
    }
    bf16 = bf16_runs_here()
    if bf16:
        fns["bf16"] = lambda: FastPredictor(fast, precision="bf16")(x)
    if compile_:
        compiled = optimize_for_inference(model, x, compile=True)
        fns["compiled"] = lambda: FastPredictor(compiled)(x)
    if compile_ and bf16:
        compiled_bf16 = optimize_for_inference(model, x, compile=True, precision="bf16")
        fns["compiled_bf16"] = lambda: FastPredictor(compiled_bf16, precision="bf16")(x)
    session, ort_diff = _onnx_session(model, x, eager_out)
    xn = x.numpy()
    fns["ort"] = lambda: session.run(None, {"pixel_values": xn})
    t = alternate(fns, repeats)
    flops = f"{gflops(model, x):.1f} / {gflops(peer, xp):.1f}"
    # per-output-pixel normalisation when the two nets predict different sizes (valid vs same padding)
    scale = 1.0
    if "peer_shape" in case:
        out_px = eager_out.shape[-1] * eager_out.shape[-2]
        scale = (xp.shape[-1] * xp.shape[-2]) / out_px
    fastest = min(t["fast"].median, t.get("bf16", t["fast"]).median, t.get("compiled", t["fast"]).median,
                  t.get("compiled_bf16", t["fast"]).median, t["ort"].median)
    best_fp32 = min(t["fast"].median, t.get("compiled", t["fast"]).median, t["ort"].median)
    speed32 = t["peer"].median / (best_fp32 * scale)
    speed_best = t["peer"].median / (fastest * scale)
    delta = _bf16_delta(fast, case["kind"], model.config.in_channels,
                        572 if "572" in case["name"] else None,
                        multi_label=getattr(model.config, "problem_type", None) == "multi_label_classification"
                        or model.config.num_labels == 1) if bf16 else "-"
    fast_cell = f"{t['fast'].ms()} ({diff:.1e})"
    if compile_:
        fast_cell += f"; compiled {t['compiled'].ms()} (compile {compiled.medhub_compile_seconds:.0f} s)"
    bf16_cell = t["bf16"].ms() if bf16 else "not run (emulated here)"
    if compile_ and bf16:
        bf16_cell += f"; compiled {t['compiled_bf16'].ms()} (compile {compiled_bf16.medhub_compile_seconds:.0f} s)"
    table.add(case["name"], flops, t["peer"].ms(), t["eager"].ms(), fast_cell, f"{t['ort'].ms()} ({ort_diff:.1e})",
              bf16_cell,
              f"{speed32:.2f}x", f"{speed_best:.2f}x", delta)
    table.note(f"{case['name']}: medhub = {case['source']}; peer = {case['peer_name']}.")


def _onnx_session(model, x, eager_out):
    """An onnxruntime session of `model` (exported with the TorchScript exporter) and its max abs diff to eager."""
    import os
    import tempfile

    import onnxruntime as ort

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).logits

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(Logits().eval(), (x,), path, dynamo=False, input_names=["pixel_values"],
                          output_names=["logits"], opset_version=17)
        model.eval()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"pixel_values": x.numpy()})[0])
    return session, float((got - eager_out).abs().max())


def _notes(table: Table) -> None:
    table.note("medhub fast fp32 = `optimize_for_inference` (conv-BN folding + channels_last) under inference_mode; "
               "ONNX Runtime = the eager model exported with `torch.onnx.export(dynamo=False, opset 17)`, CPU "
               "provider, "
               "same threads (float32, exact to 1e-4). bf16 = the fast model under CPU bf16 autocast "
               "(`precision='bf16'`); "
               "compiled = `optimize_for_inference(..., compile=True[, precision='bf16'])` (inductor, frozen weights; "
               "compile time in brackets, paid once per process). Peer = eager float32 under "
               "inference_mode, NCHW. Targets: fp32 >= 1.25x, fastest >= 2.5x the peer's throughput.")
    table.note("Speed-ups of 3a are per output pixel (medhub's valid U-Net predicts 388^2 of a 572^2 input, "
               "the peer 512^2 of 512^2); GFLOPs are counted by torch.utils.flop_counter.")
    table.note("bf16 'decisions changed' = share of argmax pixels / labels that differ from float32 on real "
               "validation images (PneumoniaMNIST val for CheXNet, ISBI 2012 EM for the U-Nets): an upper bound "
               "of the accuracy delta (target 0.5 points).")
