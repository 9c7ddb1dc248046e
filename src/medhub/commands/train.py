"""`medhub train CONFIG.yaml [--output-dir DIR] [--max-steps N] [--push-to-hub REPO] [--resume [CKPT]]`.

Runs a YAML recipe through `transformers.Trainer` (see medhub.training). For several GPUs or nodes launch
the same command with accelerate: `accelerate launch --num_processes 4 -m medhub train CONFIG.yaml`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from ..training import load_recipe, train


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="fine-tune a model from a YAML recipe (transformers Trainer)")
    parser.add_argument("config", help="recipe YAML (see recipes/)")
    parser.add_argument("--output-dir", default=None, help="checkpoints and final model (default: out/<recipe name>)")
    parser.add_argument("--max-steps", type=int, default=None, help="override training.max_steps")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO", help="upload the final model and card here")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="resume from CHECKPOINT, or from the last checkpoint in the output dir")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.config)
    command = "medhub " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    result = train(recipe, args.output_dir, max_steps=args.max_steps, resume_from_checkpoint=args.resume,
                   push_to_hub=args.push_to_hub, command=command)
    if result.trainer.is_world_process_zero():
        shown = ", ".join(f"{r['name']}={r['value']:.4f}" for r in result.card_metrics)
        print(f"trained {recipe.name}: {result.train_metrics.get('global_step')} steps -> {result.output_dir}")
        print(f"validation: {shown}")
        if args.push_to_hub:
            print(f"pushed to {args.push_to_hub}")
    return 0
