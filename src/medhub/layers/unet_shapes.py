"""Which input sizes go through a U-Net (the paper's, or the Attention U-Net) and what size comes out, per spatial
dimension; `UNetShapes` gives the U-Net families' models these answers for their config.

With padding="valid" (the paper) every double convolution trims 4 pixels and every 2x2 max-pooling
needs an even size, so an input length L passes only if L = 2**depth * k + 4 * (2**depth - 1) for an
integer k (the bottleneck's input length); the decoder then needs k large enough that no size drops
below 1. The paper's 572 = 16 * 32 + 60 gives 388. With padding="same" lengths are kept and must be
multiples of 2**depth.
"""

from __future__ import annotations

from ..errors import InputError


def output_length(length: int, depth: int, padding: str) -> int | None:
    """Output length for an input `length`, or None when that length does not go through the network."""
    if padding == "same":
        return length if length >= 2**depth and length % 2**depth == 0 else None
    for _ in range(depth):  # contracting path: double conv (-4) then 2x2 max-pool
        length -= 4
        if length < 2 or length % 2:
            return None
        length //= 2
    length -= 4  # bottleneck
    for _ in range(depth):  # expanding path: 2x2 up-conv then double conv
        if length < 1:
            return None
        length = 2 * length - 4
    return length if length >= 1 else None


def _step_offset(depth: int, padding: str) -> tuple[int, int]:
    """Valid lengths are step * k + offset for integers k >= the minimum k."""
    step = 2**depth
    return step, (4 * (step - 1) if padding == "valid" else 0)


def _minimum_k(depth: int, padding: str) -> int:
    step, offset = _step_offset(depth, padding)
    k = 1
    while output_length(step * k + offset, depth, padding) is None:
        k += 1
    return k


def minimum_input_length(depth: int, padding: str) -> int:
    step, offset = _step_offset(depth, padding)
    return step * _minimum_k(depth, padding) + offset


def nearest_valid_length(length: int, depth: int, padding: str) -> int:
    """The valid input length nearest to `length` (the larger one on a tie)."""
    step, offset = _step_offset(depth, padding)
    k = max(int((length - offset) / step + 0.5), _minimum_k(depth, padding))
    return step * k + offset


def rule(depth: int, padding: str) -> str:
    """The valid input lengths in words, for error messages."""
    step, offset = _step_offset(depth, padding)
    k_min = _minimum_k(depth, padding)
    if padding == "same":
        return f"multiples of 2**depth = {step}"
    return (f"{step}*k + {offset} for k >= {k_min} (each double conv trims 4 pixels and every size must be even "
            f"before a 2x2 max-pool)")


def check_input_size(spatial: tuple[int, ...], depth: int, padding: str, name: str = "pixel_values") -> tuple[int, ...]:
    """The output spatial size for input `spatial`; InputError naming the minimum or nearest valid size."""
    where = f"U-Net (padding={padding!r}, depth={depth})"
    minimum = minimum_input_length(depth, padding)
    nearest = tuple(nearest_valid_length(s, depth, padding) for s in spatial)
    if any(s < minimum for s in spatial):
        raise InputError(
            f"{name}: spatial size {tuple(spatial)} is too small for {where}: the minimum input size is {minimum} "
            f"per spatial dim (valid sizes are {rule(depth, padding)}); the nearest valid input size is {nearest}"
        )
    out = tuple(output_length(s, depth, padding) for s in spatial)
    if any(o is None for o in out):
        raise InputError(
            f"{name}: spatial size {tuple(spatial)} does not fit {where}: valid sizes are {rule(depth, padding)}; "
            f"the nearest valid input size is {nearest}"
        )
    return out


class UNetShapes:
    """Mixed into a U-Net family's PreTrainedModel (its config has `depth`, `padding`, `spatial_dims`): the task
    (dense segmentation) and the sizes the network takes and gives."""

    pipeline_tag = "image-segmentation"

    @property
    def input_size_multiple(self) -> int:
        return 2**self.config.depth

    def example_input_size(self) -> tuple[int, ...]:
        return (minimum_input_length(self.config.depth, self.config.padding),) * self.config.spatial_dims

    def check_input_size(self, spatial: tuple[int, ...], name: str = "pixel_values") -> tuple[int, ...]:
        """The output spatial size for input `spatial`; InputError naming the minimum or nearest valid size."""
        return check_input_size(tuple(spatial), self.config.depth, self.config.padding, name=name)

    def output_size(self, input_size: int | tuple[int, ...]) -> tuple[int, ...]:
        """Spatial size of the logits for an input of `input_size` (an int means every spatial dim)."""
        return self.check_input_size(self._as_spatial(input_size), name="input_size")

    def valid_input_size(self, size: int | tuple[int, ...]) -> int | tuple[int, ...]:
        """The nearest input size the network accepts (per dim; an int in, an int out)."""
        nearest = [nearest_valid_length(s, self.config.depth, self.config.padding) for s in self._as_spatial(size)]
        return nearest[0] if isinstance(size, int) else tuple(nearest)

    def _as_spatial(self, size: int | tuple[int, ...]) -> tuple[int, ...]:
        return (size,) * self.config.spatial_dims if isinstance(size, int) else tuple(size)
