"""The `medhub` command line.

  medhub demo [--batch]            the main job: serve every zoo model in one Gradio app (--batch: run once, exit)
  medhub convert SRC OUT --arch A  convert a published .pth checkpoint into a medhub folder
  medhub zoo list                  the local model zoo
  medhub zoo build NAME            train a zoo checkpoint from recipes/zoo/NAME.yaml, store and evaluate it
                                   (MEDHUB_RECIPES_DIR or ./recipes/zoo; into MEDHUB_ZOO_DIR or ./model_zoo)
  medhub zoo refresh [NAME]        rewrite the zoo folders' config, card and remote code (weights untouched)
  medhub zoo build NAME --evaluate-only   calibrate and measure the stored weights again (no training)
  medhub zoo push --org ORG        publish every present zoo folder to the Hub
  medhub spaces build [ID...]      write the zoo's Space folders (spaces/<id>/: app, wheel, examples)
  medhub spaces push --org ORG     publish the model repos, then the Spaces
  medhub info MODEL                a model's config, parameter count and source
  medhub train RECIPE.yaml         fine-tune through the transformers Trainer (see recipes/)
  medhub evaluate MODEL DATA       metrics of a model on a dataset split (JSON for the card)
  medhub predict MODEL INPUT...    masks (PNG/NIfTI), probabilities (CSV) and heatmaps for images, volumes, folders
  medhub --version                 medhub, torch and transformers versions
"""

from __future__ import annotations

import argparse
import json
import sys

from .auto import MedModel
from .commands import add_evaluate_parser, add_predict_parser, add_spaces_parser, add_train_parser
from .convert import convert_checkpoint
from .demo import run_demo
from .errors import MedhubError
from .zoo import build as zoo_build
from .zoo.listing import format_table
from .zoo.refresh import refresh_zoo


def _cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(out_dir=args.out, data_dir=args.data, host=args.host, port=args.port, batch=args.batch)


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (0 or a negative count is an error, never a silent default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (expected 1 or more)")
    return value


def _cmd_convert(args: argparse.Namespace) -> int:
    model = convert_checkpoint(args.src, args.out, args.arch, num_labels=args.num_labels, in_channels=args.in_channels)
    print(f"converted {args.src} ({args.arch}) -> {args.out}: {type(model).__name__}, "
          f"{model.num_parameters():,} parameters, {model.config.num_labels} labels")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    if args.zoo_command == "list":
        print(format_table())
        return 0
    if args.zoo_command == "build":
        if not args.name:
            raise SystemExit("medhub zoo build: expected a NAME (a recipes/zoo/NAME.yaml)")
        if args.evaluate_only:
            summary = zoo_build.evaluate_only(args.name, data_dir=args.data, out_dir=args.out)
        else:
            summary = zoo_build.build(args.name, data_dir=args.data, out_dir=args.out, max_steps=args.max_steps)
        print(json.dumps(summary, indent=2))
        return 0
    if args.zoo_command == "refresh":
        for folder in refresh_zoo(names=[args.name] if args.name else None):
            print(f"refreshed {folder}")
        return 0
    if args.zoo_command == "push":
        if not args.org:
            raise SystemExit("medhub zoo push: expected --org ORG")
        for repo in zoo_build.push(args.org, token=args.token, names=[args.name] if args.name else None):
            print(f"pushed {repo}")
        return 0
    raise SystemExit(f"unknown zoo command {args.zoo_command!r}")


def _cmd_info(args: argparse.Namespace) -> int:
    model = MedModel.from_pretrained(args.model, revision=args.revision)
    cfg = model.config
    print(f"{args.model}: {type(model).__name__} ({cfg.model_type}), {model.num_parameters():,} parameters")
    print(f"  source: {getattr(model, 'hub_source', '?')}")
    print(f"  input: {cfg.in_channels} channel(s) {cfg.channel_names or ''}; labels: {', '.join(cfg.labels)}")
    return 0


def version_text() -> str:
    """`medhub --version`: medhub's version and those of the libraries that decide its numbers."""
    import torch
    import transformers

    from . import __version__
    return f"medhub {__version__} (torch {torch.__version__}, transformers {transformers.__version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medhub", description="medhub: medical imaging CNNs on the Hugging Face Hub")
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the versions of medhub, torch and transformers, and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job: serve every zoo model in one Gradio app on 127.0.0.1:7860 "
                                       "(--batch: run them once on real scans and exit)")
    demo.add_argument("--out", default="out/demo", help="folder for the pictures (default: out/demo)")
    demo.add_argument("--data", default=None, help="data folder (default: $MEDHUB_DATA_DIR or ../shared/data)")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve the app on (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=7860, help="port to serve the app on (default: 7860)")
    demo.add_argument("--batch", action="store_true",
                      help="run every model once on real scans, write pictures to --out and exit instead of serving")
    demo.set_defaults(func=_cmd_demo)

    convert = sub.add_parser("convert", help="convert a published PyTorch checkpoint into a medhub model folder")
    convert.add_argument("src", help="checkpoint file (.pth/.pth.tar/.pt state dict; read with weights_only=True)")
    convert.add_argument("out", help="output folder (config.json + model.safetensors + README.md)")
    convert.add_argument("--arch", required=True, help="densenet121, chexnet, resnet18..resnet152, vgg11..vgg19[_bn]")
    convert.add_argument("--num-labels", type=_positive_int, default=None, help="size of a new classification head")
    convert.add_argument("--in-channels", type=_positive_int, default=None, help="adapt the first conv (1 = greyscale)")
    convert.set_defaults(func=_cmd_convert)

    zoo = sub.add_parser("zoo", help="the local model zoo")
    zoo.add_argument("zoo_command", choices=["list", "build", "refresh", "push"])
    zoo.add_argument("name", nargs="?", default=None, help="build: the zoo id (recipes/zoo/NAME.yaml); push: only "
                                                           "this id")
    zoo.add_argument("--data", default=None, help="build: data folder (default: $MEDHUB_DATA_DIR or ../shared/data)")
    zoo.add_argument("--out", default=None, help="build: output folder (default: model_zoo/NAME)")
    zoo.add_argument("--max-steps", type=int, default=None, help="build: override training.max_steps (smoke tests)")
    zoo.add_argument("--evaluate-only", action="store_true",
                     help="build: no training; calibrate (classifiers) and measure the stored weights again, "
                          "rewrite config and card")
    zoo.add_argument("--org", default=None, help="push: the Hub organisation or user to publish under")
    zoo.add_argument("--token", default=None, help="push: a Hub token (default: the logged-in one)")
    zoo.set_defaults(func=_cmd_zoo)

    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_predict_parser(sub)
    add_spaces_parser(sub)

    info = sub.add_parser("info", help="show a model's config and where it was loaded from")
    info.add_argument("model")
    info.add_argument("--revision", default=None)
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MedhubError as err:
        print(f"medhub: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
