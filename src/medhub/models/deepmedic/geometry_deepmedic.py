"""Segment arithmetic of DeepMedic: which input sizes give which output, and where each pathway looks.

All sizes are per axis (D, H, W). For an output segment of o voxels and a normal pathway of receptive
field R, the normal pathway takes o + R - 1 voxels and a pathway subsampled by f takes R + ceil(o/f) - 1
voxels of every f-th voxel (released: o = 21 -> 37, 23, 21; o = 29 -> 45, 26, 22).

Where the subsampled input lies is the original's `get_subsampl_segment` rule: its first voxel sits
`centre - before` voxels from the first voxel of the normal segment, with centre = f//2 and
before = (f-1)/2 * R for odd f (centre = f//2 - 1, before = (f-2)/2 * R + R//2 for even f). With R = 17 that
is -16 for x3 and -32 for x5: the subsampled grid passes through the centre of the first output voxel,
so subsampled output k describes normal output f*k, and repetition spreads it over outputs f*k .. f*k+f-1.
A "context patch" is the smallest full-resolution patch, centred on the normal segment, that contains
every pathway's input: o + 2 * margin voxels (released: 21 -> 101, 29 -> 109).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

Triple = tuple[int, int, int]


def as_triple(size: int | Sequence[int], name: str) -> Triple:
    if isinstance(size, int) and not isinstance(size, bool):
        return (size, size, size)
    values = tuple(size)
    if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name}: expected an int or 3 ints, got {size!r}")
    return values


def subsampled_offset(factor: int, receptive_field: int) -> int:
    """Position of a subsampled input's first voxel relative to the normal segment's first voxel (one axis)."""
    if factor % 2 == 1:
        before, centre = (factor - 1) // 2 * receptive_field, factor // 2
    else:
        before, centre = (factor - 2) // 2 * receptive_field + receptive_field // 2, factor // 2 - 1
    return centre - before


class DeepMedicGeometry:
    """Segment sizes and input extraction for a DeepMedicConfig (normal pathway first)."""

    def __init__(self, receptive_field: Triple, factors: Sequence[Sequence[int]]):
        self.receptive_field = tuple(receptive_field)
        self.factors = [tuple(f) for f in factors]

    def output_size(self, segment: Triple) -> Triple:
        return tuple(s - r + 1 for s, r in zip(segment, self.receptive_field))

    def segment_sizes(self, output: Triple) -> list[Triple]:
        normal = tuple(o + r - 1 for o, r in zip(output, self.receptive_field))
        subs = [tuple(r + math.ceil(o / f) - 1 for o, r, f in zip(output, self.receptive_field, factor))
                for factor in self.factors]
        return [normal] + subs

    def margin(self, output: Triple) -> Triple:
        """Voxels the context patch needs on each side of the normal segment."""
        sizes = self.segment_sizes(output)
        margins = []
        for d in range(3):
            m = 0
            for factor, size in zip(self.factors, sizes[1:]):
                offset = subsampled_offset(factor[d], self.receptive_field[d])
                last = offset + factor[d] * (size[d] - 1)
                m = max(m, -offset, last - (sizes[0][d] - 1))
            margins.append(m)
        return tuple(margins)

    def context_size(self, output: Triple) -> Triple:
        normal, margin = self.segment_sizes(output)[0], self.margin(output)
        return tuple(s + 2 * m for s, m in zip(normal, margin))

    def output_for_context(self, context: Triple) -> Triple | None:
        """The output size whose context patch is exactly `context`, or None (context_size is increasing)."""
        result = []
        for d in range(3):
            found = None
            for o in range(1, context[d] + 1):
                size = self.context_size((o, o, o))[d]
                if size == context[d]:
                    found = o
                if size >= context[d]:
                    break
            if found is None:
                return None
            result.append(found)
        return tuple(result)

    def extract(self, context: torch.Tensor, output: Triple) -> list[torch.Tensor]:
        """Every pathway's input, cut from a context patch (N, C, *context_size(output))."""
        sizes, margin = self.segment_sizes(output), self.margin(output)
        normal = context[(slice(None), slice(None)) + tuple(slice(m, m + s) for m, s in zip(margin, sizes[0]))]
        inputs = [normal]
        for factor, size in zip(self.factors, sizes[1:]):
            index = [slice(None), slice(None)]
            for d in range(3):
                start = margin[d] + subsampled_offset(factor[d], self.receptive_field[d])
                index.append(slice(start, start + factor[d] * (size[d] - 1) + 1, factor[d]))
            inputs.append(context[tuple(index)])
        return inputs
