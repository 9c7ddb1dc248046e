"""`medhub predict MODEL INPUT... --out DIR`: whole-image prediction on files and folders.

  medhub predict medhub/unet-isbi2012 ../shared/data/isbi2012-em/unlabeled --out out/isbi
  medhub predict ./my-deepmedic brats/pat0003 --out out/brats            (a subject folder, channels by name)
  medhub predict ./my-deepmedic pat3/Flair.nii.gz,pat3/T1c.nii.gz --out out/brats   (channels in config order)
  medhub predict ./my-chexnet xrays/ --out out/cxr --tta                 (predictions.csv + heatmaps)
  medhub predict medhub/attention-unet-brats study/ --out out/seg        (DICOM series in, DICOM SEG out)
  medhub predict medhub/unet-isbi2012 em.png --out out/em --tta --save-probabilities   (+ probability and
                                                                          uncertainty maps)

Outputs and what is done per model kind: see `medhub.predict`. medhub-manifest.jsonl in --out records what
produced each output (input path, size and mtime, model, weights hash, settings): an input is skipped only
when all of these match. One run at a time writes into a folder (others wait).
Exit code 0 when every input was predicted or skipped (outputs already there; --overwrite recomputes), 1 when
any input failed (each failure is listed; a folder without inputs is one), 2 for errors before any input ran
(model not found, bad options, --out a file).

Run standalone: `python -m medhub.commands.predict MODEL INPUT... --out DIR`.
"""

from __future__ import annotations

import argparse
import sys

from ..acceleration import BACKENDS
from ..auto import MedModel
from ..errors import MedhubError
from ..precision import PRECISION_CHOICES
from ..predict import predict_paths
from ..predict.dicom_output import FORMATS


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", help="Hub id, zoo id (medhub/...) or local model folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="PNG/JPEG/DICOM image, NIfTI file, DICOM series folder, folder (searched recursively), "
                             "or a multi-channel case as its channel files joined by commas (config.channel_names "
                             "order)")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--tta", action="store_true", help="average over flipped copies (test-time augmentation)")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="classifiers: images per forward pass (default 16; images of one shape are batched); "
                             "segmenters: windows/tiles per forward pass (default: the weights' inference "
                             "settings, else 4)")
    parser.add_argument("--heatmaps", action=argparse.BooleanOptionalAction, default=None,
                        help="classifiers: write <stem>_heatmap.png, the top label's CAM (default: on for fewer "
                             "than 50 inputs)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: where the model is)")
    parser.add_argument("--roi-size", type=_positive_int, default=None,
                        help="sliding-window / tile size per axis (default: the weights' inference settings, else "
                             "512 in 2D, 96 in 3D)")
    parser.add_argument("--overlap", type=_fraction, default=None,
                        help="sliding-window overlap (default: the weights' inference settings, else 0.5)")
    parser.add_argument("--format", dest="output_format", choices=FORMATS, default="auto",
                        help="a 3D segmenter's labels: auto = DICOM SEG (<stem>_seg.dcm) for DICOM series inputs, "
                             "NIfTI (<stem>_seg.nii.gz) otherwise; nifti or dicom-seg force one")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="auto (default): bf16 where the CPU/GPU computes it natively (AVX512-BF16, AMX, recent "
                             "GPUs), else exact fp32; fp32: exact; bf16: always (slow where emulated)")
    parser.add_argument("--backend", choices=BACKENDS, default="pytorch",
                        help="pytorch (default) or onnxruntime (float32 graphs checked against PyTorch within 1e-4; "
                             "pip install medhub[fast])")
    parser.add_argument("--save-probabilities", action="store_true",
                        help="segmenters: also write the per-class probability map (<stem>_probabilities.npz for "
                             "images, .nii.gz for volumes) and, with --tta, the uncertainty map (<stem>_uncertainty: "
                             "entropy of the TTA-averaged probabilities)")
    parser.add_argument("--overwrite", action="store_true", help="recompute inputs whose outputs already exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def add_predict_parser(subparsers) -> argparse.ArgumentParser:
    """Add `predict` to the `medhub` command's subparsers."""
    parser = subparsers.add_parser("predict", help="predict masks/probabilities for images, volumes and folders",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    model = MedModel.from_pretrained(args.model)
    report = predict_paths(model, args.inputs, args.out, batch_size=args.batch_size, device=args.device, tta=args.tta,
                           roi_size=args.roi_size, overlap=args.overlap, overwrite=args.overwrite,
                           progress=not args.no_progress, heatmaps=args.heatmaps,
                           output_format=args.output_format, precision=args.precision, backend=args.backend,
                           save_probabilities=args.save_probabilities)
    skipped = f" (outputs already in {args.out}; --overwrite recomputes them)" if report.skipped else ""
    print(f"medhub predict: {len(report.predicted)} predicted, {len(report.skipped)} skipped{skipped}, "
          f"{len(report.failed)} failed")
    if report.failed:
        print(f"medhub predict: {len(report.failed)} input(s) failed:", file=sys.stderr)
        for name, message in report.failed:
            print(f"  {message if name in message else f'{name}: {message}'}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="medhub predict", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except MedhubError as err:
        print(f"medhub predict: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
