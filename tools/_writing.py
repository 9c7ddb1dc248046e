"""What the checkout's generators share: writing their files and their command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def write_texts(texts: dict[Path, str]) -> list[Path]:
    """Write each text to its path (folders created); the paths written."""
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(texts)


def generator_main(doc: str, default_folder: str, write: Callable[[str], list[Path]], argv=None) -> int:
    """`python -m tools.<generator> [--out FOLDER]`: write, then list what was written."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=default_folder)
    for path in write(parser.parse_args(argv).out):
        print(f"wrote {path}")
    return 0
