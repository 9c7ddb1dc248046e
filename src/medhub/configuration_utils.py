"""Base of every medhub config: plain typed data on top of `transformers.PreTrainedConfig`.

Family configs declare typed fields (the constructor signature is the config schema) and override
`check()`; validation happens once, here, at construction, and raises `ConfigError` naming the field.
Sizes are bounded so that a hostile `config.json` (say, width 10**9) is refused before any allocation, each
field on its own and then the parameter count they imply together (`medhub.config_size`); `weights_info` is
checked against its schema (`medhub.weights_info`) and `id2label` must number the labels 0..num_labels-1.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .config_size import check_parameter_count
from .errors import ConfigError
from .weights_info import check_weights_info

# Bounds used by family configs; generous for real models, far below what would exhaust memory.
MAX_CHANNELS = 4096
MAX_WIDTH = 4096
MAX_LABELS = 10000
MAX_DEPTH = 10


class MedPreTrainedConfig(PreTrainedConfig):
    """Fields every medhub model has.

    in_channels: number of input channels (1 for greyscale X-ray/EM, 2 for FLAIR+T1c, ...).
    channel_names: what each input channel is, in order (e.g. ["flair", "t1c"]); used by readers/CLI.
    modality: imaging modality of the intended input ("CR", "MR", "EM", ...), informative.
    weights_info: metadata the weights carry (licence, training data, recipe, metrics, intended use).
    """

    model_type = "medhub"

    in_channels: int = 1
    channel_names: list[str] | None = None
    modality: str | None = None
    weights_info: dict[str, Any] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check_common()
        self.check()
        check_parameter_count(self)  # last: the count builds the model on the meta device from checked fields

    # -- validation -------------------------------------------------------------------------------
    def _check_common(self) -> None:
        check_int(self, "in_channels", 1, MAX_CHANNELS)
        if self.num_labels is None or not 1 <= int(self.num_labels) <= MAX_LABELS:
            raise ConfigError(f"{type(self).__name__}.num_labels={self.num_labels!r}: expected 1..{MAX_LABELS}")
        if self.channel_names is not None and len(self.channel_names) != self.in_channels:
            raise ConfigError(
                f"{type(self).__name__}.channel_names has {len(self.channel_names)} names "
                f"{self.channel_names} but in_channels={self.in_channels}"
            )
        self._check_id2label()
        check_weights_info(self.weights_info, f"{type(self).__name__}.weights_info")

    def _check_id2label(self) -> None:
        """Labels are numbered 0..num_labels-1 ({"0": .., "5": ..} used to fail later with KeyError: 1)."""
        keys = sorted(self.id2label or {})
        if keys != list(range(len(keys))) or len(keys) != self.num_labels:
            raise ConfigError(f"{type(self).__name__}.id2label keys {[str(k) for k in keys]}: expected the label "
                              f"numbers 0..{self.num_labels - 1}, each once")

    def check(self) -> None:
        """Family-specific validation; raise `ConfigError` naming the field and what was expected."""

    # -- presets every family has (class-level plain data: fields over the defaults; keyword arguments win) -----
    PAPER = None      # the paper's configuration, where the paper gives one
    REFERENCE = None  # the configuration the architecture card describes (default: the paper's, else the defaults)
    TINY = None       # a small configuration of the same architecture, for fast tests

    @classmethod
    def paper(cls, **kwargs) -> MedPreTrainedConfig:
        """The network of the paper (the family's PAPER preset)."""
        return cls._preset("PAPER", cls.PAPER, kwargs)

    @classmethod
    def reference(cls, **kwargs) -> MedPreTrainedConfig:
        """The configuration the family's architecture card describes."""
        return cls._preset("REFERENCE", cls.REFERENCE if cls.REFERENCE is not None else (cls.PAPER or {}), kwargs)

    @classmethod
    def tiny(cls, **kwargs) -> MedPreTrainedConfig:
        """A small configuration of the same architecture, for fast tests."""
        return cls._preset("TINY", cls.TINY, kwargs)

    @classmethod
    def _preset(cls, name: str, preset: dict | None, overrides: dict) -> MedPreTrainedConfig:
        if preset is None:
            raise NotImplementedError(f"{cls.__name__} has no {name} preset")
        return cls(**{**preset, **overrides})

    @property
    def custom_pipelines(self) -> dict[str, Any]:
        """config.json's `custom_pipelines` (the repo's generated pipeline module, which plain transformers runs with
        trust_remote_code=True), less the tasks whose transformers pipeline is already medhub's (medhub imported:
        `medhub.classification_pipeline.register`): transformers then neither runs the repo's code nor asks to."""
        declared = self.__dict__.get("custom_pipelines") or {}
        return {task: spec for task, spec in declared.items() if not medhub_pipeline_registered(task)}

    @custom_pipelines.setter
    def custom_pipelines(self, value: dict[str, Any] | None) -> None:
        self.__dict__["custom_pipelines"] = value  # saved as read (to_dict copies __dict__)

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in range(self.num_labels)]


def medhub_pipeline_registered(task: str) -> bool:
    """Whether transformers' pipeline for `task` is medhub's (`serves_medhub_models`; registered when medhub is
    imported), which makes a repo's generated copy of it moot."""
    from transformers.pipelines import PIPELINE_REGISTRY

    impl = PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl")
    return bool(getattr(impl, "serves_medhub_models", False))


def check_int(config: Any, field: str, lo: int, hi: int) -> None:
    value = getattr(config, field)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{type(config).__name__}.{field}={value!r}: expected an integer in [{lo}, {hi}]")


def check_choice(config: Any, field: str, choices: tuple) -> None:
    value = getattr(config, field)
    if value not in choices:
        raise ConfigError(f"{type(config).__name__}.{field}={value!r}: expected one of {list(choices)}")


def check_int_list(config: Any, field: str, lo: int, hi: int, length: int | None = None) -> None:
    values = getattr(config, field)
    ok = isinstance(values, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in values
    )
    if not ok or (length is not None and len(values) != length) or len(values) == 0:
        want = f"{length} " if length is not None else ""
        raise ConfigError(
            f"{type(config).__name__}.{field}={values!r}: expected a list of {want}integers in [{lo}, {hi}]"
        )


def check_unet_fields(config: Any, min_depth: int = 1) -> None:
    """The fields every U-Net-like config shares: spatial_dims, base_width, depth (and the bottleneck's width,
    base_width * 2**depth, bounded), norm and loss."""
    check_choice(config, "spatial_dims", (2, 3))
    check_int(config, "base_width", 1, MAX_WIDTH)
    check_int(config, "depth", min_depth, MAX_DEPTH)
    if config.base_width * 2**config.depth > MAX_WIDTH * 16:
        raise ConfigError(f"{type(config).__name__}: base_width={config.base_width} * 2**depth={2**config.depth} "
                          f"channels at the bottleneck exceeds {MAX_WIDTH * 16}")
    check_choice(config, "norm", (None, "batch", "instance"))
    check_choice(config, "loss", ("weighted_ce", "ce", "dice_ce"))
