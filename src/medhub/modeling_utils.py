"""Base of every medhub model: `medhub.modeling_base.MedModelBase` (the network side: paper, processor class,
input validation, `infer`) plus loading and saving that take safetensors only, strictly.

What medhub adds to transformers' loading and saving:
- `from_pretrained` resolves ids through `medhub.hub` (local folder, Hub, then the local zoo), refuses
  pickle-only repos, checks safetensors framing, and raises `WeightsMismatchError` naming missing,
  unexpected or wrongly shaped keys instead of returning a partly random model;
- `save_pretrained` also writes `preprocessor_config.json` and a generated `README.md` model card;
  together with the remote code that lets plain transformers load the repo (`medhub.remote_code`);
- `push_to_hub` uploads exactly those files in one commit;
- each family names its image processor class (`processor_class`); `default_image_processor()` is that class's
  default for the config.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers.initialization import no_init_weights

from .auto import load_config, load_image_processor
from .errors import ConfigError, WeightsMismatchError, describe_keys
from .hub import CARD_NAME, PROCESSOR_NAME, resolve_model, upload_folder
from .inference.inferers import Inferer
from .logging_utils import get_logger
from .model_card import generate_model_card
from .modeling_base import MedModelBase, Paper  # noqa: F401  (Paper: families import it from here)
from .registry import MODEL_REGISTRY
from .remote_code import BundledFile, digests, remote_code_for, write_remote_code
from .weights_files import (
    TORCH_DTYPES,
    WEIGHTS_NAME,
    check_safetensors_file,
    check_weight_dtypes,
    read_checked_safetensors,
)
from .weights_info import read_weights_info

logger = get_logger("modeling")


class MedPreTrainedModel(MedModelBase):
    """A medhub model: `MedModelBase` (the network side) plus medhub's loading, saving and sharing."""

    def inferer(self, **overrides: Any) -> Inferer:
        read_weights_info(self.config)  # weights_info changed after loading is checked as a loaded one is
        return super().inferer(**overrides)

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
            defer_check=(WEIGHTS_NAME,),  # framing and NaN/Inf checked on the bytes the fast path loads
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
            for file in resolved.unchecked:  # what transformers' loader reads is checked first, as always
                check_safetensors_file(file)
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
        code, text = repo_code_and_card(self, card)
        super().save_pretrained(save_directory, *args, **kwargs)
        save_directory = Path(save_directory)
        processor = self.image_processor or self.default_image_processor()
        if processor is not None:
            processor.save_pretrained(save_directory)
        write_repo_files(self, save_directory, code, text, storage_dtype=str(self.dtype).removeprefix("torch."))

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
    model's, loaded in float32 with no other loading option. The file is read once
    (`read_checked_safetensors`: framing and NaN/Inf checked on the very bytes that are loaded, which is why
    `resolve_model` defers its check of this file), the model is built without weight initialisation (every
    tensor is then overwritten), and each tensor is copied straight from the file's bytes into the model's own
    (`copy_`, which widens float16 zoo weights to float32 in the same pass): `load_state_dict` does the same
    copies, plus per-module Python that costs more than the copies (DenseNet-121: 434 modules, 727 tensors).
    Comparing the header's dtypes to the model's spares `check_weight_dtypes` a second header read.
    Measured on DenseNet-121 (float16 zoo file) and kept out: building on the meta device (48 ms against 38
    ms: its TorchFunctionMode costs more per module than the empty allocations it saves) and
    `load_state_dict(assign=True)` (33 ms, as the copy, plus 25 ms to widen float16 first).
    transformers' generic loader builds one regex per key (the `re` cache holds 512, so a 727-key DenseNet
    recompiles them all on every load) and initialises every module before overwriting it (benchmarks/RESULTS.md,
    loading row, has the cost). Anything else (sharded weights, other dtypes, device maps, prefixed
    keys of a backbone/task checkpoint, missing or mismatched keys, a module with load_state_dict hooks) goes
    through transformers, which also produces the detailed error report.
    """
    dtype = kwargs.get("dtype") if kwargs.get("dtype") is not None else kwargs.get("torch_dtype")
    if set(kwargs) - _FAST_LOAD_KWARGS or dtype not in (None, torch.float32, "float32"):
        return None
    file = Path(folder) / WEIGHTS_NAME
    if not file.is_file() or (Path(folder) / "model.safetensors.index.json").exists():
        return None
    header, data, start = read_checked_safetensors(file)
    tensors = {k: m for k, m in header.items() if k != "__metadata__"}
    if any(m["dtype"] not in TORCH_DTYPES or (start + m["data_offsets"][0]) % TORCH_DTYPES[m["dtype"]].itemsize
           for m in tensors.values()):
        return None  # a dtype transformers' loader reads, or a tensor not aligned to its item size in the file
    with no_init_weights():
        model = cls(config)
    expected = model.state_dict()
    if set(tensors) != set(expected) or any(
            list(v.shape) != tensors[k]["shape"]
            or TORCH_DTYPES[tensors[k]["dtype"]].is_floating_point != v.is_floating_point()
            for k, v in expected.items()):
        return None
    if any(m._load_state_dict_pre_hooks or m._load_state_dict_post_hooks for m in model.modules()):
        model.load_state_dict({k: _tensor(data, start, m) for k, m in tensors.items()}, strict=True)
    else:
        with torch.no_grad():
            for name, meta in tensors.items():
                expected[name].copy_(_tensor(data, start, meta))
    model.config.dtype = torch.float32
    return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}


def _tensor(data: torch.Tensor, start: int, meta: dict) -> torch.Tensor:
    """The tensor `meta` (a safetensors header entry) as a view of the file's bytes `data` (no copy)."""
    a, b = meta["data_offsets"]
    return data[start + a:start + b].view(TORCH_DTYPES[meta["dtype"]]).view(meta["shape"])


def repo_code_and_card(model, card: str | None = None) -> tuple[list[BundledFile], str]:
    """The remote code plain transformers needs (`medhub.remote_code`) and the model card recording its sha256 (`card`
    when given). Made before anything is written, so a card that cannot be made fails a save before any file is."""
    code = remote_code_for(model)
    return code, card if card is not None else generate_model_card(model, remote_code=digests(code))


def write_repo_files(model, folder: Path, code: list[BundledFile], card: str, storage_dtype: str | None = None) -> None:
    """Next to saved weights: the remote code and the card of `repo_code_and_card`, and config.json's `dtype`
    (float32: what every path computes in, whatever dtype the weights are stored in). `storage_dtype`: the weights
    file's dtype when it differs."""
    write_remote_code(model, folder, code)
    fields = {"dtype": "float32"}
    if storage_dtype not in (None, "float32"):
        fields["storage_dtype"] = storage_dtype
    config_file = folder / "config.json"
    data = json.loads(config_file.read_text(encoding="utf-8"))
    config_file.write_text(json.dumps({**data, **fields}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / CARD_NAME).write_text(card, encoding="utf-8")


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
