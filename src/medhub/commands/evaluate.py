"""`medhub evaluate MODEL DATA [--split validation] [--out metrics.json]`: metrics of a model on a dataset.

Prints a table and writes JSON whose `metrics` list is in the model card's `weights_info["metrics"]` format.
The model runs as `medhub predict` runs it: the processor saved with the weights, then the model's inferer
(`medhub.evaluation`). The loader options, label values and 3D subject split are those recorded with the
weights (`weights_info` "data_options", "label_values", "patches", written by `medhub train`) unless
`--recipe` names a recipe whose `data:` section is used instead.
DATA is a named dataset, a folder (class-per-folder images, whose folder names must be the model's labels;
images/ + masks/ pairs; subject folders with one NIfTI file per channel and a label map whose name contains
"label"; its one split is "train") or a MedMNIST `.npz` file (splits train,
validation, test: the arrays it holds).
A classification threshold is either a number or `validation`: chosen on the validation split, then applied
to the split evaluated, so a test score never sees its own labels twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..auto import MedModel
from ..data.folders import detect_layout, nifti_stem
from ..data.recipe_data import for_evaluation
from ..errors import ConfigError, InputError
from ..evaluation import evaluate_model, format_table
from ..evaluation.task_metrics import CLASSIFICATION, task_of
from ..predict.cases import match_channel_files
from ..predict.inference import channel_names, input_processor
from ..training.recipe import load_recipe
from ..weights_info import read_weights_info


def _threshold(text: str):
    if text == "validation":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threshold {text!r}: expected a number or 'validation'") from None


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("evaluate", help="evaluate a model on a labelled dataset split (table + JSON)")
    parser.add_argument("model", help="model folder or Hub id")
    parser.add_argument("data", help="a medhub.data dataset name (isbi2012, pneumoniamnist, ...), a folder of "
                                     "labelled images (class-per-folder, images/ + masks/ pairs, subject folders) or "
                                     "a MedMNIST .npz file")
    parser.add_argument("--split", default=None,
                        help="split to evaluate (default: 'train' for a folder, which is its only split; "
                             "'validation' otherwise)")
    parser.add_argument("--out", default=None, help="write the metrics as JSON here (card metrics format)")
    parser.add_argument("--recipe", default=None, help="take data options, crop and collator from this recipe")
    parser.add_argument("--threshold", type=_threshold, default=None,
                        help="classification threshold: a number, or 'validation' to choose it (max F1) on the "
                             "validation split (default: the one saved with the weights, else 0.5)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N examples only")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    result = evaluate_command(args.model, args.data, split=args.split, recipe_path=args.recipe,
                              threshold=args.threshold, limit=args.limit, batch_size=args.batch_size)
    print(format_table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def evaluate_command(model_id: str, data: str, split: str | None = None, recipe_path: str | None = None,
                     threshold=None, limit: int | None = None, batch_size: int = 8):
    """What `medhub evaluate` does, as a function: returns a `medhub.evaluation.EvaluationResult`."""
    model = MedModel.from_pretrained(model_id)
    split = split or ("train" if Path(data).expanduser().is_dir() else "validation")
    if threshold == "validation" and task_of(model) != CLASSIFICATION:
        raise ConfigError("--threshold validation: only classification models have a decision threshold")
    return evaluate_model(model, data_section(model, data, recipe_path), split, threshold=threshold, limit=limit,
                          batch_size=batch_size)


def data_section(model, data: str, recipe_path: str | None = None) -> dict:
    """The `data:` section evaluation reads: the recipe's, else what the weights recorded, for dataset `data`."""
    if recipe_path:
        return {**for_evaluation(load_recipe(recipe_path).data), "name": data}
    info = read_weights_info(model.config)
    section = {"name": data, "options": dict(info.get("data_options") or {})}
    for key in ("label_values", "patches"):
        if info.get(key):
            section[key] = info[key]
    path = Path(data).expanduser()
    if path.is_dir() and detect_layout(path) == "nifti-subjects":
        label = (section.get("patches") or {}).get("label", "label")
        section.update(every_subject=True, options={**section["options"], "files": subject_files(model, path, label)})
    return section


def subject_files(model, root: Path, label: str) -> dict[str, str]:
    """Column -> file stem for a folder of subject folders, from its first subject: each of the model's channels,
    its ROI mask (when present) and the label map, found by name as `medhub predict` finds channels (the file
    whose name contains the channel name, case-insensitive)."""
    processor = input_processor(model)
    channels = channel_names(model)
    mask_name = getattr(processor, "mask_name", None)
    first = next((d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")), root)
    found = match_channel_files(first, [*channels, label], [mask_name] if mask_name else [])
    if found is None:
        raise InputError(f"{first}: expected one NIfTI file whose name contains each of {[*channels, label]} "
                         "(case-insensitive; the label map's name contains the label column name)")
    files = {name: nifti_stem(f) for name, f in zip([*channels, label], found)}
    mask = match_channel_files(first, [mask_name], [*channels, label]) if mask_name else None
    return {**files, **({mask_name: nifti_stem(mask[0])} if mask else {})}
