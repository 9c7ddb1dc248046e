"""A zoo checkpoint as a ready model, for the demos: `load_checkpoint(id, org)` is
`MedModel.from_pretrained("<org>/<id>")` (Hub first, then the local zoo for `medhub/` ids), the org given or else
the environment variable MEDHUB_ORG (a Space variable on the Hub), default "medhub", so a Space serves the weights
pushed under its organisation; a checkpoint that neither the Hub nor the local zoo has runs the catalogue's
architecture and processor with random weights, flagged `trained=False`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..auto import MedModel
from ..errors import ModelNotFoundError
from .catalog import ORG, Checkpoint, checkpoint

ORG_ENV = "MEDHUB_ORG"


def organisation(default: str = ORG) -> str:
    """The organisation whose model repos the demos serve: MEDHUB_ORG, else `default`."""
    return os.environ.get(ORG_ENV) or default


@dataclass
class CheckpointModel:
    entry: Checkpoint
    model: Any
    trained: bool
    source: str
    repo_id: str


def load_checkpoint(model_id: str, org: str | None = None) -> CheckpointModel:
    """The checkpoint's weights from the Hub / local zoo; its architecture with random weights if missing."""
    entry = checkpoint(model_id)
    repo_id = f"{org or organisation()}/{entry.id}"
    try:
        model, trained = MedModel.from_pretrained(repo_id), True
        source = str(getattr(model, "hub_source", "medhub zoo"))
    except ModelNotFoundError:
        torch.manual_seed(0)
        model, trained = MedModel.from_config(entry.config()), False
        model.image_processor = entry.processor()
        source = "reference configuration, random weights (not in the Hub or the local zoo yet)"
    return CheckpointModel(entry, model.eval(), trained, source, repo_id)


__all__ = ["CheckpointModel", "ORG_ENV", "load_checkpoint", "organisation"]
