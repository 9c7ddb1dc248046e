"""Blocks shared by every medhub model family (model folders never import from each other)."""

from .cropping import center_crop
from .factories import avg_pool, conv, conv_transpose, dropout, max_pool, norm

__all__ = ["avg_pool", "center_crop", "conv", "conv_transpose", "dropout", "max_pool", "norm"]
