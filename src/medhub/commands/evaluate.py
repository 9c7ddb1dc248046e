"""`medhub evaluate MODEL DATA [--split validation] [--out metrics.json]`: metrics of a model on a dataset.

Prints a table and writes JSON whose `metrics` list is in the model card's `weights_info["metrics"]` format.
The intensity handling and the loader options are those recorded with the weights (`weights_info`
"preprocessing" and "data_options", written by `medhub train`) unless `--recipe` names a recipe whose
`data:` section (options, crop, collator) is used instead.
A classification threshold is either a number or `validation`: chosen on the validation split, then applied
to the split evaluated, so a test score never sees its own labels twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError


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
    parser.add_argument("data", help="a medhub.data dataset name (isbi2012, pneumoniamnist, ...) or a folder")
    parser.add_argument("--split", default="validation", help="split to evaluate (default: validation)")
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
    from ..training.evaluate import format_table

    print(format_table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def evaluate_command(model_id: str, data: str, split: str = "validation", recipe_path: str | None = None,
                     threshold=None, limit: int | None = None, batch_size: int = 8):
    """What `medhub evaluate` does, as a function: returns a `medhub.training.EvaluationResult`."""
    from .. import MedModel
    from ..training.data import load_split
    from ..training.evaluate import CLASSIFICATION, choose_threshold_on, evaluate_model, task_of
    from ..training.recipe import Recipe, load_recipe
    from ..training.trainer import make_collator

    model = MedModel.from_pretrained(model_id)
    info = model.config.weights_info or {}
    if recipe_path:
        recipe = load_recipe(recipe_path)
        recipe.data = {**recipe.data, "name": data, "limit_eval": limit}
    else:
        recipe = Recipe.from_dict({"model": {"pretrained": model_id},
                                   "data": {"name": data, "limit_eval": limit,
                                            "options": dict(info.get("data_options") or {}),
                                            "collator": dict(info.get("preprocessing") or {})}})
    recipe.data["shuffle_before_limit"] = False
    from ..training.evaluate_brats import evaluate_volumes, uses_volumes

    if uses_volumes(recipe.data, info):  # 3D patch-trained models: whole volumes, BraTS region Dice
        data_section = recipe.data if recipe.data.get("patches") else {**recipe.data, "patches": info["patches"]}
        return evaluate_volumes(model, data_section, split, dataset_name=data, batch_size=batch_size, limit=limit)
    collator = make_collator(model, recipe)
    dataset = load_split(recipe.data, split)
    source = None
    if threshold is None:
        threshold = info.get("threshold", 0.5)
        source = "validation (saved with the weights)" if "threshold" in info else None
    if threshold == "validation":
        if task_of(model) != CLASSIFICATION:
            raise ConfigError("--threshold validation: only classification models have a decision threshold")
        validation = dataset if split == "validation" else load_split(recipe.data, "validation")
        threshold = choose_threshold_on(model, validation, collator, batch_size)
        source = "validation"
    return evaluate_model(model, dataset, collator, split=split, dataset_name=data, threshold=threshold,
                          threshold_source=source, batch_size=batch_size)
