"""What every demo tab shows alike: the notice, errors as messages, pictures and downloads, the model's details."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np

from ..errors import MedhubError
from ..predict import save_png
from .loading import LoadedModel, device

DISCLAIMER = ("**Research use only - not a medical device.** These demos are not for diagnosis, treatment or any "
              "clinical decision. Uploaded images are processed in memory and deleted when the request is answered; "
              "do not upload identifiable patient data.")
OUTPUT_MAX_AGE_S = 600  # downloads (mask PNG/NIfTI) written by the app are deleted after this


def user_errors(fn: Callable) -> Callable:
    """Run a request; any failure becomes a `gr.Error` with a message saying what was wrong with which input."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (MedhubError, ValueError, OSError) as err:
            raise gr.Error(_as_uploaded(str(err), args, kwargs), title="Input not accepted") from None
        except MemoryError:
            raise gr.Error("the input is too large to process on this machine; crop or downsample it") from None
        except Exception as err:  # noqa: BLE001 - the server must keep serving whatever a request does
            raise gr.Error(_as_uploaded(f"could not process this input: {type(err).__name__}: {err}", args, kwargs)) \
                from None
    return wrapper


def _as_uploaded(message: str, args: tuple, kwargs: dict) -> str:
    """The message with every uploaded file's server path (gradio's upload folder) replaced by the file's name,
    as the user gave it: the server's folders are nobody's business."""
    paths: set[str] = set()

    def collect(value) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            collect(value.get("path"))
        elif isinstance(value, (str, Path)) and Path(value).is_absolute():
            paths.add(str(value))

    collect(list(args) + list(kwargs.values()))
    for path in sorted(paths, key=len, reverse=True):
        message = message.replace(path, Path(path).name)
    return message


# -- outputs --------------------------------------------------------------------------------------------------
_OUTPUTS: Path | None = None


def output_dir() -> Path:
    """A private folder for downloads (mask PNG / NIfTI); files older than OUTPUT_MAX_AGE_S are swept away."""
    global _OUTPUTS
    if _OUTPUTS is None or not _OUTPUTS.is_dir():
        _OUTPUTS = Path(tempfile.mkdtemp(prefix="medhub-demo-"))
    now = time.time()
    for old in _OUTPUTS.iterdir():
        if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_OUTPUTS))


def picture_file(array: np.ndarray | None, name: str = "image") -> str | None:
    """`array` (uint8 grey or RGB) as a PNG in a fresh output folder, for an image output of an event.

    Why not return the array: gradio saves an array output under the hash of its bytes and rewrites that file in
    place, so two users receiving the same picture at once (the same upload) could be served a half-written
    file. A returned file is copied into gradio's cache under a temporary name and renamed, which is safe."""
    if array is None:
        return None
    return str(save_png(np.ascontiguousarray(array), output_dir() / f"{name}.png"))


def scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Min-max (1st-99th percentile for volumes) scaling to 0..255 for display."""
    array = np.asarray(array, dtype=np.float32)
    low, high = np.percentile(array, [0.5, 99.5]) if array.ndim == 3 else (array.min(), array.max())
    return (np.clip((array - low) / max(float(high - low), 1e-6), 0, 1) * 255).astype(np.uint8)


def model_details(loaded: LoadedModel) -> str:
    config = loaded.model.config
    state = "trained weights" if loaded.trained else "**random weights**"
    return (f"`{loaded.repo_id}`: {type(loaded.model).__name__}, {loaded.model.num_parameters():,} parameters, "
            f"{state} ({loaded.source}); input: {config.in_channels} channel(s)"
            f"{' ' + str(list(config.channel_names)) if getattr(config, 'channel_names', None) else ''}; "
            f"labels: {', '.join(config.labels)}; running on {device().type.upper()}.")


__all__ = ["DISCLAIMER", "model_details", "output_dir", "picture_file", "scale_to_uint8", "user_errors"]
