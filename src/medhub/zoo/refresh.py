"""`medhub zoo refresh`: regenerate what a zoo folder derives from medhub's code, leaving its weights alone.

A zoo folder's config.json `auto_map`/`dtype`, preprocessor_config.json `auto_map`, model card (README.md)
and remote code (`*.py`, `medhub.remote_code`) all follow from medhub's source and the weights' metadata; after
a change to those, `medhub zoo refresh` rewrites them the way `save_pretrained` would, without re-saving (or
re-training) the weights: model.safetensors is only read.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from ..auto import MedModel
from ..errors import ConfigError
from ..modeling_utils import repo_code_and_card, write_repo_files
from .local import available, find

SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}


def storage_dtype(folder: Path) -> str:
    """The dtype of the floating-point tensors in `folder/model.safetensors` (as stored)."""
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        kinds = {weights.get_slice(k).get_dtype() for k in weights.keys()}
    floats = sorted(SAFETENSORS_DTYPES[k] for k in kinds if k in SAFETENSORS_DTYPES)
    return floats[0] if len(floats) == 1 else "mixed"


def refresh(folder: Path) -> None:
    """Rewrite `folder`'s generated files (see the module docstring); the weights file is not written."""
    for old in folder.glob("*.py"):  # code of a previous medhub version; the set of files may have changed
        old.unlink()
    model = MedModel.from_pretrained(str(folder))
    write_repo_files(model, folder, *repo_code_and_card(model), storage_dtype=storage_dtype(folder))


def refresh_zoo(names: list[str] | None = None) -> list[Path]:
    """Refresh every present zoo folder (or `names`); returns the folders."""
    folders = []
    for name in names or available():
        folder, why = find(name)
        if folder is None:
            raise ConfigError(f"zoo refresh {name!r}: {why}")
        refresh(folder)
        folders.append(folder)
    return folders


__all__ = ["refresh", "refresh_zoo", "storage_dtype"]
