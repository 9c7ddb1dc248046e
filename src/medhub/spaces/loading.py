"""The models behind the demos: each zoo checkpoint loaded once, on the GPU when there is one.

`load_model(id, org)` is `medhub.zoo.loading.load_checkpoint(id, org)` (org default MEDHUB_ORG, else "medhub"; the
catalogue's architecture with random weights when neither the Hub nor the local zoo has the checkpoint, and
every tab says so) moved to the GPU when there is one, with a lock for its requests.
`gpu(fn)` runs `fn` under `spaces.GPU` (Hugging Face ZeroGPU) when that package is importable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..zoo.catalog import Checkpoint
from ..zoo.loading import load_checkpoint

UNTRAINED_BANNER = ("⚠️ **UNTRAINED WEIGHTS - OUTPUTS ARE MEANINGLESS.** `{repo}` is not in the Hub or the local "
                    "zoo yet, so this tab runs the reference {family} configuration with random weights; it only shows "
                    "that the pipeline works end to end.")


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedModel:
    """A model ready for requests; `lock` serialises requests (Grad-CAM hooks are not thread-safe); `precision`:
    what it runs in ("auto": bf16 only where the hardware has it natively, else exact fp32; `medhub.precision`)."""

    entry: Checkpoint
    model: Any
    trained: bool
    source: str
    repo_id: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    precision: str = "auto"

    @property
    def banner(self) -> str:
        return "" if self.trained else UNTRAINED_BANNER.format(repo=self.repo_id, family=self.entry.short_title)

    @property
    def labels(self) -> list[str]:
        return list(self.model.config.labels)


def load_model(model_id: str, org: str | None = None) -> LoadedModel:
    """The checkpoint's weights from the Hub / local zoo; its architecture with random weights (flagged) if missing."""
    loaded = load_checkpoint(model_id, org)
    return LoadedModel(loaded.entry, loaded.model.to(device()), loaded.trained, loaded.source, loaded.repo_id)


def gpu(fn: Callable) -> Callable:
    """Wrap `fn` with `spaces.GPU` (ZeroGPU on Hugging Face Spaces) when that package is importable."""
    try:
        import spaces  # type: ignore[import-not-found]  # optional: only on Hugging Face Spaces
    except ImportError:
        return fn
    wrap = getattr(spaces, "GPU", None)  # not e.g. a folder named spaces/ on sys.path (a namespace package)
    return wrap(fn) if callable(wrap) else fn


__all__ = ["LoadedModel", "device", "gpu", "load_model"]
