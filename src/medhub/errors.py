"""medhub's exceptions: each says which input was wrong and what was expected."""

from collections.abc import Iterable


class MedhubError(Exception):
    """Base class of every error medhub raises on purpose."""


class ModelNotFoundError(MedhubError, OSError):
    """A model id or path was found in none of the sources tried (the message lists them)."""


class PickleWeightsError(MedhubError, OSError):
    """A repository or folder holds only pickle weights (.bin/.pth/.pt), which medhub never unpickles."""


class CorruptWeightsError(MedhubError, OSError):
    """A safetensors file is truncated, corrupt or not safetensors at all."""


class WeightsMismatchError(MedhubError, ValueError):
    """The weights do not fit the config: missing, unexpected or wrongly shaped keys (named)."""


class ConfigError(MedhubError, ValueError):
    """A config (or config.json) is invalid: unknown model_type, absurd sizes, inconsistent fields."""


class InputError(MedhubError, ValueError):
    """An input image/volume/tensor is not what the model or reader expects."""


class HubError(MedhubError, OSError):
    """The Hub (or the endpoint in HF_ENDPOINT) refused or failed a request."""


class NoHeatmapError(MedhubError):
    """A class activation map would not mean anything (e.g. its source feature map is under 4x4, or its range is
    rounding noise): the message is the reason, shown to users as "no heatmap: <reason>"."""


def describe_keys(*groups: tuple[str, Iterable[str]], limit: int = 12) -> str:
    """"label: a, b and 3 more; label: ..." for the non-empty groups of (state-dict) keys, for error messages."""
    parts = []
    for label, keys in groups:
        keys = sorted(keys)
        if keys:
            more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
            parts.append(f"{label}: {', '.join(keys[:limit])}{more}")
    return "; ".join(parts)
