"""`medhub spaces build [--out DIR] [--org ORG] [--data DIR] [ID...]` and `medhub spaces push --org ORG [ID...]`.

build writes (or refreshes) the Hugging Face Space folder `<out>/<id>/` of each zoo id (default: all): README.md
with the Space configuration, requirements.txt, app.py, medhub's wheel and the example inputs (see
medhub.spaces.repo). push publishes the model repos `<org>/<id>` (the zoo push), then the Spaces `<org>/<id>`.
Both run from a medhub checkout (the wheel is built from it) with ../shared/data or MEDHUB_DATA_DIR (the examples).
"""

from __future__ import annotations

import argparse


def add_spaces_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("spaces", help="build the zoo's Hugging Face Space folders, or push them to the Hub")
    commands = parser.add_subparsers(dest="spaces_command", required=True)
    build = commands.add_parser("build", help="write (or refresh) the Space folders <out>/<id>/")
    build.add_argument("--out", default="spaces", help="the folder of the Space folders (default: spaces)")
    build.add_argument("--org", default=None, help="the Hub organisation (or user) whose model repos the Spaces serve "
                                                   "by default (default: medhub)")
    push = commands.add_parser("push", help="push the model repos <org>/<id>, then the Spaces <org>/<id>")
    push.add_argument("--org", required=True, help="the Hub organisation (or user) to publish under")
    push.add_argument("--token", default=None, help="a Hub token (default: the logged-in one)")
    for command in (build, push):
        command.add_argument("ids", nargs="*", metavar="ID", help="zoo ids (default: every catalogue checkpoint)")
        command.add_argument("--data", default=None, help="the data folder the examples are cut from (default: "
                                                          "$MEDHUB_DATA_DIR or ../shared/data)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..spaces.publish import build_spaces, push_spaces
    from ..spaces.repo import DEFAULT_ORG

    if args.spaces_command == "build":
        for folder in build_spaces(args.out, args.ids, org=args.org or DEFAULT_ORG, data_dir=args.data):
            files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            print(f"built {folder}: {', '.join(files)}")
        return 0
    for repo in push_spaces(args.org, args.ids, token=args.token, data_dir=args.data):
        print(f"pushed Space {repo}")
    return 0
