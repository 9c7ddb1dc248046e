"""CheXNet's class-balanced weighted binary cross-entropy (Rajpurkar et al. 2017, section 2.2).

    L(X, y) = -w+ * y * log p(Y=1|X) - w- * (1 - y) * log p(Y=0|X)
    w+ = |N| / (|P| + |N|),   w- = |P| / (|P| + |N|)

|P| and |N| are a class's positive and negative counts in the training set, so the rare positive cases
weigh as much in total as the many negatives. Computed from logits with log-sigmoid for stability.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError


def bce_class_weights(positive_counts: Sequence[float], total_counts: Sequence[float] | float
                           ) -> tuple[list[float], list[float]]:
    """(w+, w-) per class from the number of positives and the number of cases (per class or one total).

    >>> bce_class_weights([10, 50], 100)
    ([0.9, 0.5], [0.1, 0.5])
    """
    totals = [float(total_counts)] * len(positive_counts) if isinstance(total_counts, (int, float)) else total_counts
    if len(totals) != len(positive_counts):
        raise InputError(f"total_counts: expected {len(positive_counts)} values (one per class), got {len(totals)}")
    pos_weights, neg_weights = [], []
    for i, (positives, total) in enumerate(zip(positive_counts, totals)):
        if not 0 <= positives <= total or total <= 0:
            raise InputError(f"class {i}: expected 0 <= positives <= total and total > 0, got {positives} of {total}")
        pos_weights.append((total - positives) / total)
        neg_weights.append(positives / total)
    return pos_weights, neg_weights


def weighted_bce_with_logits(logits: torch.Tensor, labels: torch.Tensor,
                             pos_weights: Sequence[float] | torch.Tensor | None = None,
                             neg_weights: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """Mean over cases and classes of the weighted BCE above; `logits` and `labels` are (batch, classes).

    Without weights they are computed from this batch's labels (w+ = fraction of negatives in the batch,
    w- = fraction of positives), the only counts available; note that a class with no positive in the
    batch then gets w- = 0 and contributes nothing. Pass training-set weights for the paper's loss.
    """
    if logits.shape != labels.shape or logits.ndim != 2:
        raise InputError(
            f"labels: expected shape (batch, classes) = {tuple(logits.shape)} like the logits, got "
            f"{tuple(labels.shape)}"
        )
    labels = labels.to(logits.dtype)
    if (pos_weights is None) != (neg_weights is None):
        raise InputError("pos_weights and neg_weights: give both or neither")
    if pos_weights is None:
        neg_weights = labels.mean(dim=0)
        pos_weights = 1.0 - neg_weights
    pos_weights = torch.as_tensor(pos_weights, dtype=logits.dtype, device=logits.device)
    neg_weights = torch.as_tensor(neg_weights, dtype=logits.dtype, device=logits.device)
    if pos_weights.shape != (logits.shape[1],) or neg_weights.shape != (logits.shape[1],):
        raise InputError(f"pos_weights/neg_weights: expected {logits.shape[1]} values each (one per class)")
    loss = -pos_weights * labels * F.logsigmoid(logits) - neg_weights * (1.0 - labels) * F.logsigmoid(-logits)
    return loss.mean()
