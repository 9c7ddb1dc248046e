"""Base of every medhub model: a `transformers.PreTrainedModel` that loads safetensors only, strictly.

What medhub adds to transformers' loading and saving:
- `from_pretrained` resolves ids through `medhub.hub` (local folder, Hub, then the local zoo), refuses
  pickle-only repos, checks safetensors framing, and raises `WeightsMismatchError` naming missing,
  unexpected or wrongly shaped keys instead of returning a partly random model;
- `save_pretrained` also writes `preprocessor_config.json` and a generated `README.md` model card;
- `push_to_hub` uploads exactly those files in one commit;
- `validate_pixel_values` gives every family the same clear input errors;
- `infer(pixel_values, roi_mask=..., tta=...)` runs the model on a whole preprocessed image through the
  inferer the family chooses (`inferer()`, see `medhub.inference.inferers`): the one way every caller runs a
  model on whole images;
- each family names its image processor class (`processor_class`); `default_image_processor()` is that class's
  default for the config.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.initialization import no_init_weights

from .auto import load_config, load_image_processor
from .configuration_utils import MedPreTrainedConfig
from .errors import ConfigError, CorruptWeightsError, InputError, WeightsMismatchError, describe_keys
from .hub import CARD_NAME, PROCESSOR_NAME, resolve_model, upload_folder
from .inference.inferers import ClassifierInferer, InferenceSettings, Inferer, SlidingWindowInferer
from .logging_utils import get_logger
from .model_card import generate_model_card
from .registry import MODEL_REGISTRY
from .weights_files import check_weight_dtypes
from .weights_info import read_weights_info

logger = get_logger("modeling")


@dataclass(frozen=True)
class Paper:
    """The paper a family implements, as its model card cites it: title, URL, BibTeX, and a short summary of the
    architecture."""

    title: str
    url: str
    bibtex: str
    summary: str


class MedPreTrainedModel(PreTrainedModel):
    config_class = MedPreTrainedConfig
    base_model_prefix = "medhub"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    # What the generated model card says about the architecture (set by each family).
    paper: ClassVar[Paper] = Paper("", "", "", "")
    pipeline_tag: ClassVar[str] = ""
    # The family's image processor class (preprocessor_config.json), registered with AutoImageProcessor.
    processor_class: ClassVar[type | None] = None

    def __init__(self, config: MedPreTrainedConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # An image processor that travels with the weights (preprocessor_config.json); not a module.
        self.image_processor = None

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return int(getattr(self.config, "spatial_dims", 2) or 2)

    def output_options(self, output_hidden_states: bool | None, return_dict: bool | None) -> tuple[bool, bool]:
        """(output_hidden_states, return_dict) of a forward call: the arguments given, else the config's."""
        return (bool(self.config.output_hidden_states if output_hidden_states is None else output_hidden_states),
                bool(self.config.return_dict if return_dict is None else return_dict))

    @property
    def input_size_multiple(self) -> int:
        """Input sizes the network takes are multiples of this (U-Nets: 2**depth)."""
        return 1

    def example_input_size(self) -> tuple[int, ...]:
        """A small spatial size the network takes (families override): used for `dummy_inputs` and tests."""
        return (32,) * self.spatial_dims

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """A random batch of two inputs of `example_input_size()` (transformers' hook for dummy inputs)."""
        return {"pixel_values": torch.randn(2, self.config.in_channels, *self.example_input_size())}

    # -- whole-image inference: the one way every caller runs the model on a whole image --------------------
    def inferer(self, **overrides: Any) -> Inferer:
        """This model's inferer with its settings: defaults, then `weights_info["inference"]` (saved with the
        weights), then `overrides` (InferenceSettings fields; None leaves a setting as it is)."""
        saved = read_weights_info(self.config).get("inference")
        settings = InferenceSettings.from_dict(saved).merged(**overrides)
        return self.inferer_class()(settings)

    def inferer_class(self) -> type[Inferer]:
        """Classifiers: one forward pass; segmenters: Gaussian sliding window (families override)."""
        return ClassifierInferer if self.pipeline_tag == "image-classification" else SlidingWindowInferer

    def infer(self, pixel_values: torch.Tensor, *, roi_mask: Any = None, tta: bool = False,
              **overrides: Any) -> torch.Tensor:
        """Class probabilities (N, num_labels, *spatial) on the CPU for a preprocessed input (N, C, *spatial).

        roi_mask: (*spatial) mask restricting a segmentation (outside it: background); tta: average flips;
        overrides: InferenceSettings fields (roi_size, overlap, batch_size, roi_margin, tta_axes, precision)."""
        return self.inferer(**overrides)(self, pixel_values, roi_mask=roi_mask, tta=tta)

    # -- weights initialisation: He (Kaiming) normal for convolutions, as U-Net/DeepMedic/ResNet use ----
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
                                 nn.InstanceNorm2d, nn.InstanceNorm3d)):
            if getattr(module, "weight", None) is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
            if getattr(module, "num_batches_tracked", None) is not None:
                init.zeros_(module.num_batches_tracked)

    # -- input validation shared by every family ------------------------------------------------------
    def validate_pixel_values(self, pixel_values: Any, spatial_dims: int | None = None,
                              min_size: int | tuple[int, ...] | None = None, name: str = "pixel_values") -> None:
        """Raise `InputError` for a non-tensor, wrong rank, wrong channel count, too small or non-finite input."""
        spatial_dims = spatial_dims or getattr(self.config, "spatial_dims", 2)
        if not isinstance(pixel_values, torch.Tensor):
            raise InputError(f"{name}: expected a torch.Tensor, got {type(pixel_values).__name__}")
        expected = "(batch, channels, " + ", ".join("HWD"[:spatial_dims] if spatial_dims < 3 else "DHW") + ")"
        if pixel_values.ndim != spatial_dims + 2:
            raise InputError(f"{name}: expected a {spatial_dims + 2}-D tensor {expected}, got shape "
                             f"{tuple(pixel_values.shape)}")
        if pixel_values.shape[1] != self.config.in_channels:
            names = f" {self.config.channel_names}" if self.config.channel_names else ""
            raise InputError(
                f"{name}: expected {self.config.in_channels} channel(s){names} in dim 1, got {pixel_values.shape[1]} "
                f"(shape {tuple(pixel_values.shape)})"
            )
        if min_size is not None:
            mins = (min_size,) * spatial_dims if isinstance(min_size, int) else tuple(min_size)
            if any(s < m for s, m in zip(pixel_values.shape[2:], mins)):
                raise InputError(
                    f"{name}: spatial size {tuple(pixel_values.shape[2:])} is too small for this model; "
                    f"the minimum is {mins}"
                )
        if pixel_values.is_floating_point() and not pixel_values.is_meta and not torch.isfinite(pixel_values).all():
            bad = (~torch.isfinite(pixel_values)).sum().item()
            raise InputError(f"{name}: {bad} non-finite value(s) (NaN or Inf); clean or mask the image first")

    # -- loading ----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args,
                        revision: str | None = None, **kwargs):
        """Load from a local folder, a Hub repo id or (for `medhub/...` ids) the local zoo; safetensors only."""
        want_info = kwargs.pop("output_loading_info", False)
        resolved = kwargs.pop("_resolved", None) or resolve_model(
            pretrained_model_name_or_path,
            revision=revision,
            token=kwargs.get("token"),
            cache_dir=kwargs.get("cache_dir"),
            local_files_only=kwargs.get("local_files_only", False),
        )
        for key in ("token", "cache_dir", "local_files_only", "force_download"):
            kwargs.pop(key, None)
        if kwargs.get("use_safetensors") is False:
            raise ValueError("medhub loads safetensors only; use_safetensors=False is not supported")
        kwargs["use_safetensors"] = True
        # Zoo weights may be stored in float16 to stay small; models compute in float32 unless asked otherwise.
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32
        kwargs.setdefault("ignore_mismatched_sizes", True)  # reported below as an error, with the key names
        config = kwargs.pop("config", None)
        if config is None:
            config = load_config(resolved.path, expected=cls.config_class)
        loaded = None if model_args else _fast_load(cls, config, resolved.path, kwargs)
        if loaded is not None:
            model, info = loaded
        else:
            model, info = super().from_pretrained(
                str(resolved.path), *model_args, config=config, output_loading_info=True, **kwargs
            )
        # A backbone class (AutoModel) may load a task checkpoint: the head's keys are then legitimately unused.
        if MODEL_REGISTRY.get(config.model_type, cls) is not cls:
            info = {**info, "unexpected_keys": []}
        _raise_on_bad_loading(resolved.path, info)
        if loaded is None:  # (the fast path compared the loaded tensors' dtypes itself)
            check_weight_dtypes(resolved.path, model)  # U8/I32 tensors would load as floats silently
        model.name_or_path = str(pretrained_model_name_or_path)
        model.config._name_or_path = str(pretrained_model_name_or_path)
        model.hub_source = resolved.source
        model.weights_folder = resolved.path  # what the weights' revision is read from (e.g. a DICOM SEG's)
        model.image_processor = _load_processor(resolved.path)
        model.eval()
        return (model, info) if want_info else model

    # -- saving and sharing -------------------------------------------------------------------------------
    def default_image_processor(self):
        """The processor saved with the weights when none was attached: the family processor's default for this
        config (None when it has none, e.g. a U-Net with 3 input channels)."""
        return self.processor_class.default_for(self.config) if self.processor_class is not None else None

    def save_pretrained(self, save_directory: str | os.PathLike, *args, card: str | None = None, **kwargs) -> None:
        """Write config.json + model.safetensors + preprocessor_config.json + README.md (model card).

        The config (weights_info, id2label: they may have been changed after loading) is checked and the card
        generated before anything is written, so bad metadata leaves no folder without its README.md."""
        read_weights_info(self.config)
        self.config._check_id2label()
        text = card if card is not None else generate_model_card(self)
        super().save_pretrained(save_directory, *args, **kwargs)
        save_directory = Path(save_directory)
        processor = self.image_processor or self.default_image_processor()
        if processor is not None:
            processor.save_pretrained(save_directory)
        (save_directory / CARD_NAME).write_text(text, encoding="utf-8")

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                    commit_message: str | None = None, revision: str | None = None, create_pr: bool = False,
                    card: str | None = None, **_ignored) -> Any:
        """Upload config, safetensors weights, processor config and a generated card in one commit."""
        with tempfile.TemporaryDirectory(prefix="medhub-push-") as tmp:
            self.save_pretrained(tmp, card=card)
            return upload_folder(Path(tmp), repo_id, private=private, token=token,
                                 commit_message=commit_message or f"Upload {type(self).__name__} with medhub",
                                 revision=revision, create_pr=create_pr)


_FAST_LOAD_KWARGS = {"use_safetensors", "dtype", "torch_dtype", "ignore_mismatched_sizes"}


def _fast_load(cls, config, folder: Path, kwargs: dict):
    """(model, loading info) for the common case, or None to let transformers' loader handle it.

    The common case: one `model.safetensors` whose keys, shapes and kinds (floating point or not) are exactly the
    model's, loaded in float32 with no other loading option. The model is built without weight initialisation
    (every tensor is then overwritten by the strict `load_state_dict`, which also widens float16 zoo weights) and
    the file is read once with `safetensors.torch.load_file`; comparing the tensors' kinds here spares a second
    header read (`check_weight_dtypes`). Measured on DenseNet-121 (float16 zoo file) and kept out: building on the
    meta device (48 ms against 38 ms: its TorchFunctionMode costs more per module than the empty allocations it
    saves) and `load_state_dict(assign=True)` (33 ms, as the copy, plus 25 ms to widen float16 first).
    transformers' generic loader builds one regex per key (the `re` cache holds 512, so a 727-key DenseNet
    recompiles them all on every load) and initialises every module before overwriting it (benchmarks/RESULTS.md,
    loading row, has the cost). Anything else (sharded weights, other dtypes, device maps, prefixed
    keys of a backbone/task checkpoint, missing or mismatched keys) goes through transformers, which also
    produces the detailed error report.
    """
    dtype = kwargs.get("dtype") if kwargs.get("dtype") is not None else kwargs.get("torch_dtype")
    if set(kwargs) - _FAST_LOAD_KWARGS or dtype not in (None, torch.float32, "float32"):
        return None
    file = Path(folder) / "model.safetensors"
    if not file.is_file() or (Path(folder) / "model.safetensors.index.json").exists():
        return None
    try:
        state = load_file(str(file))
    except SafetensorError as err:  # checked before (medhub.hub), so only a file changed since: still named
        raise CorruptWeightsError(f"{file}: not a valid safetensors file: {err}") from None
    with no_init_weights():
        model = cls(config)
    expected = model.state_dict()
    if set(state) != set(expected) or any(state[k].shape != v.shape or state[k].is_floating_point() !=
                                          v.is_floating_point() for k, v in expected.items()):
        return None
    model.load_state_dict(state, strict=True)
    model.config.dtype = torch.float32
    return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}


def _raise_on_bad_loading(folder: Path, info: dict) -> None:
    report = describe_keys(
        ("missing from the weights", info.get("missing_keys") or []),
        ("in the weights but not in the model", info.get("unexpected_keys") or []),
        ("shape differs from the config (key, weights shape, model shape)",
         [str(m) for m in info.get("mismatched_keys") or []]))
    if report:
        raise WeightsMismatchError(f"{folder}: the weights do not fit config.json; {report}")


def _load_processor(folder: Path):
    if not (folder / PROCESSOR_NAME).is_file():
        return None
    try:
        return load_image_processor(folder)
    except ConfigError:
        raise
    except Exception as err:  # a processor we cannot read must not be silently dropped
        raise ConfigError(f"{folder / PROCESSOR_NAME}: cannot be read as a medhub image processor: {err}") from err
