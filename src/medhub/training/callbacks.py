"""Trainer callbacks medhub adds: early stopping from the recipe and a wall-clock training timer."""

from __future__ import annotations

import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from ..errors import ConfigError


class TrainingTimeCallback(TrainerCallback):
    """Measures the wall-clock time of `trainer.train()` (this run only, also when resumed)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.seconds: float = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        if self.started is not None:
            self.seconds = time.perf_counter() - self.started

    def formatted(self) -> str:
        minutes, seconds = divmod(round(self.seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def early_stopping(evaluation: dict[str, Any], training: dict[str, Any], source: str) -> list[TrainerCallback]:
    """`[EarlyStoppingCallback]` when the recipe's evaluation sets `early_stopping_patience`, else `[]`.

    Early stopping watches `evaluation.metric` on the validation split, so the recipe must evaluate during
    training (`training.eval_strategy` steps or epoch); this is checked here with a clear message.
    """
    patience = evaluation.get("early_stopping_patience")
    if patience is None:
        return []
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ConfigError(f"{source}: evaluation.early_stopping_patience={patience!r}: expected an integer >= 1")
    if not evaluation.get("metric"):
        raise ConfigError(f"{source}: evaluation.early_stopping_patience needs evaluation.metric (e.g. mean_dice)")
    if training.get("eval_strategy", "no") == "no":
        raise ConfigError(f"{source}: evaluation.early_stopping_patience needs training.eval_strategy "
                          "'steps' or 'epoch' (evaluation on the validation split during training)")
    return [EarlyStoppingCallback(early_stopping_patience=patience,
                                  early_stopping_threshold=float(evaluation.get("early_stopping_threshold", 0.0)))]
