"""Sub-commands of the `medhub` CLI that live in their own modules (wired in medhub.cli)."""

from .evaluate import add_evaluate_parser
from .predict import add_predict_parser
from .spaces import add_spaces_parser
from .train import add_train_parser

__all__ = ["add_evaluate_parser", "add_predict_parser", "add_spaces_parser", "add_train_parser"]
