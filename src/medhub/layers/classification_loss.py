"""The classification loss every classifier family computes from `config.problem_type`.

Single-label (softmax cross-entropy over mutually exclusive classes) and multi-label (one sigmoid/BCE per
finding, as CheXNet's 14 chest X-ray pathologies) are the two cases medical classifiers need. The labels
are checked against the chosen case instead of guessed from their dtype, so a multi-label target given to a
single-label model is an error, not a silently different loss.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from transformers.modeling_outputs import ImageClassifierOutput

from ..errors import InputError

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str | None) -> torch.Tensor:
    """Mean loss of `logits` (N, num_labels) against `labels`; problem_type None means single-label."""
    if not isinstance(labels, torch.Tensor):
        raise InputError(f"labels: expected a torch.Tensor, got {type(labels).__name__}")
    batch, num_labels = logits.shape
    if problem_type == "multi_label_classification":
        if tuple(labels.shape) != (batch, num_labels):
            raise InputError(
                f"labels: multi-label classification expects shape {(batch, num_labels)} of 0/1 targets, "
                f"got {tuple(labels.shape)}"
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if problem_type not in (None, "single_label_classification"):
        raise InputError(f"problem_type={problem_type!r}: expected one of {list(PROBLEM_TYPES)} or None")
    if labels.is_floating_point() or tuple(labels.shape) != (batch,):
        raise InputError(
            f"labels: single-label classification expects {batch} integer class indices (shape {(batch,)}), "
            f"got dtype {labels.dtype} shape {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
        raise InputError(f"labels: class indices must be in [0, {num_labels - 1}], got {labels.tolist()}")
    return F.cross_entropy(logits, labels)


def classifier_output(logits: torch.Tensor, labels: torch.Tensor | None, problem_type: str | None,
                      hidden_states, return_dict: bool):
    """The task head's output of the classifier families: `ImageClassifierOutput` (or its tuple), with the loss
    of `problem_type` when labels are given."""
    loss = classification_loss(logits, labels, problem_type) if labels is not None else None
    if not return_dict:
        return tuple(v for v in (loss, logits, hidden_states) if v is not None)
    return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)
