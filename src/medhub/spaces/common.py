"""What every demo tab shares: the zoo entries, model loading, GPU placement, input checks and clean-up.

- `ZOO`: the six demo models (zoo id, demo kind, title, example inputs) with the reference configuration that
  stands in, with random weights and a prominent banner, while the zoo has no trained checkpoint for an id.
- `load_model(id)`: `MedModel.from_pretrained("medhub/<id>")` on CUDA when present, else CPU.
- `gpu(fn)`: `spaces.GPU(fn)` when the `spaces` package (Hugging Face ZeroGPU) is importable, else `fn`.
- `check_upload(path, dims)`: the file's format and size from its header only, before any pixel is decoded,
  so a 10000x10000 PNG or a 4-D NIfTI is refused with a message instead of exhausting memory.
- `user_errors`: turns any failure of a request into a `gr.Error` (a message in the UI and in gradio_client's
  exception); `uploads.held(paths)` deletes the uploads of a request once it is answered (a few seconds later, so that a
  concurrent request for the same file, which gradio stores at the same path, is still served).
"""

from __future__ import annotations

import contextlib
import filecmp
import functools
import os
import shutil
import tempfile
import threading
import time
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import InputError, MedhubError, ModelNotFoundError
from ..shared_data import data_dir as shared_data_dir

DISCLAIMER = ("**Research use only - not a medical device.** These demos are not for diagnosis, treatment or any "
              "clinical decision. Uploaded images are processed in memory and deleted when the request is answered; "
              "do not upload identifiable patient data.")
UNTRAINED_BANNER = ("⚠️ **UNTRAINED WEIGHTS - OUTPUTS ARE MEANINGLESS.** `medhub/{id}` is not in the Hub or the local "
                    "zoo yet, so this tab runs the reference {family} configuration with random weights; it only shows "
                    "that the pipeline works end to end.")
MAX_FILE_SIZE = os.environ.get("MEDHUB_DEMO_MAX_FILE_SIZE", "100mb")  # per uploaded file (gradio refuses larger)
QUEUE_SIZE = int(os.environ.get("MEDHUB_DEMO_QUEUE_SIZE", "64"))  # requests waiting beyond this are refused
MAX_PIXELS = 50_000_000  # 2D: ~7000x7000; larger radiographs are not a demo's job
MAX_SIDE = 8192
MAX_VOXELS = 64_000_000  # 3D, per channel (a BraTS volume is 8.9 M)
MAX_ZIP_BYTES = 1_000_000_000  # uncompressed size of a DICOM series zip
UPLOAD_GRACE_S = float(os.environ.get("MEDHUB_DEMO_UPLOAD_GRACE_S", "10"))  # uploads deleted this long after use
# An upload whose request was refused (queue full) is deleted once it is this old and no request uses it: a client
# may upload, then join the queue seconds later on a busy server, so a short grace would delete a live upload.
REFUSED_UPLOAD_TTL_S = float(os.environ.get("MEDHUB_DEMO_REFUSED_UPLOAD_TTL_S", "60"))
OUTPUT_MAX_AGE_S = 600  # downloads (mask PNG/NIfTI) written by the app are deleted after this


@dataclass(frozen=True)
class ZooEntry:
    """One demo: `id` (medhub/<id>), `kind` ("classify", "segment2d", "segment3d"), a title and examples."""

    id: str
    kind: str
    title: str
    family: str
    description: str
    examples: tuple[str, ...] = ()  # paths relative to the examples folder (../shared/data)
    hardware: str = "zero-a10g"

    @property
    def short(self) -> str:
        """The tab label: the title without its parenthesised task."""
        return self.title.split(" (")[0]

    @property
    def slug(self) -> str:
        return self.id.replace("-", "_")


_XRAYS = ("chest-xray-samples/00000001_000.png", "chest-xray-samples/16747_3_1.jpg",
          "chest-xray-samples/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
          "chest-xray-samples/Fake_MONOHR1.dcm", "chest-xray-samples/tb0005.png")
_BRATS = ("brats2015-examples/brats_2013_pat0003_1/Flair_subtrMeanDivStd.nii.gz",
          "brats2015-examples/brats_2013_pat0003_1/T1c_subtrMeanDivStd.nii.gz")
ZOO: dict[str, ZooEntry] = {e.id: e for e in (
    ZooEntry("chexnet-pneumonia", "classify", "CheXNet (pneumonia)", "CheXNet (DenseNet-121)",
             "Chest radiograph -> normal / pneumonia, with the class activation map (Rajpurkar et al. 2017).", _XRAYS),
    ZooEntry("resnet18-pneumonia", "classify", "ResNet-18 (pneumonia)", "ResNet-18",
             "Chest radiograph -> normal / pneumonia, with the class activation map (He et al. 2016).", _XRAYS),
    ZooEntry("vgg16-pneumonia", "classify", "VGG-16 (pneumonia)", "VGG-16 (GAP head)",
             "Chest radiograph -> normal / pneumonia, with the class activation map (Simonyan & Zisserman 2015).",
             _XRAYS),
    ZooEntry("unet-isbi2012", "segment2d", "U-Net (ISBI 2012 EM)", "U-Net",
             "Electron-microscopy section -> membrane / cell interior (Ronneberger et al. 2015).",
             ("isbi2012-em/train/image/0.png", "isbi2012-em/unlabeled/test_0.png")),
    ZooEntry("attention-unet-brats", "segment3d", "Attention U-Net (BraTS)", "3D Attention U-Net",
             "Brain MRI (FLAIR + T1c) -> tumour sub-regions, with the attention gates' maps (Oktay et al. 2018).",
             _BRATS),
    ZooEntry("deepmedic-brats", "segment3d", "DeepMedic (BraTS)", "DeepMedic",
             "Brain MRI (FLAIR + T1c) -> tumour sub-regions, multi-scale 3D CNN (Kamnitsas et al. 2017).", _BRATS),
)}


def reference_config(model_id: str):
    """The family's reference configuration used (with random weights) while `medhub/<id>` is not available."""
    from .. import AttentionUNetConfig, CheXNetConfig, DeepMedicConfig, ResNetConfig, UNetConfig, VGGConfig

    binary = {"id2label": {0: "normal", 1: "pneumonia"}}
    volumes = {"in_channels": 2, "channel_names": ["flair", "t1c"], "num_labels": 5,
               "id2label": {0: "background", 1: "necrosis", 2: "edema", 3: "non-enhancing", 4: "enhancing"}}
    factories = {
        "chexnet-pneumonia": lambda: CheXNetConfig(in_channels=1, problem_type="single_label_classification", **binary),
        "resnet18-pneumonia": lambda: ResNetConfig(depth=18, in_channels=1, **binary),
        "vgg16-pneumonia": lambda: VGGConfig(depth=16, in_channels=1, classifier_type="gap", **binary),
        "unet-isbi2012": lambda: UNetConfig(base_width=32, padding="same", norm="batch",
                                            id2label={0: "membrane", 1: "cell"}),
        "attention-unet-brats": lambda: AttentionUNetConfig(spatial_dims=3, **volumes),
        "deepmedic-brats": lambda: DeepMedicConfig.released(id2label=volumes["id2label"]),
    }
    if model_id not in factories:
        raise InputError(f"{model_id!r}: no demo for this id; the demos are {', '.join(factories)}")
    return factories[model_id]()


# -- models ---------------------------------------------------------------------------------------------------
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedModel:
    """A model ready for requests; `lock` serialises requests (Grad-CAM hooks are not thread-safe)."""

    entry: ZooEntry
    model: Any
    trained: bool
    source: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def banner(self) -> str:
        return "" if self.trained else UNTRAINED_BANNER.format(id=self.entry.id, family=self.entry.family)

    @property
    def labels(self) -> list[str]:
        return list(self.model.config.labels)


def load_model(model_id: str) -> LoadedModel:
    """`MedModel.from_pretrained("medhub/<id>")`; the reference config with random weights (flagged) if missing."""
    from ..auto import MedModel

    entry = ZOO[model_id]
    try:
        model, trained = MedModel.from_pretrained(f"medhub/{model_id}"), True
        source = str(getattr(model, "hub_source", "medhub zoo"))
    except ModelNotFoundError:
        torch.manual_seed(0)
        model, trained = MedModel.from_config(reference_config(model_id)), False
        source = "reference configuration, random weights (not in the Hub or the local zoo yet)"
    return LoadedModel(entry, model.eval().to(device()), trained, source)


def gpu(fn: Callable) -> Callable:
    """Wrap `fn` with `spaces.GPU` (ZeroGPU on Hugging Face Spaces) when that package is importable."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    wrap = getattr(spaces, "GPU", None)  # not e.g. a folder named spaces/ on sys.path (a namespace package)
    return wrap(fn) if callable(wrap) else fn


# -- inputs ---------------------------------------------------------------------------------------------------
def examples_dir() -> Path | None:
    """MEDHUB_EXAMPLES_DIR, else the shared data folder (../shared/data or MEDHUB_DATA_DIR); None when absent."""
    if os.environ.get("MEDHUB_EXAMPLES_DIR"):
        path = Path(os.environ["MEDHUB_EXAMPLES_DIR"]).expanduser()
        return path if path.is_dir() else None
    return shared_data_dir()


def example_paths(entry: ZooEntry, folder: Path | None) -> list[str]:
    """The entry's example files present in `folder` (registered: gradio's copies are not deleted as uploads)."""
    paths = [str(folder / p) for p in entry.examples if folder is not None and (folder / p).is_file()]
    register_examples(paths)
    return paths


def _name(path: str | Path) -> str:
    """The name the user gave the file (gradio keeps it as the last path component)."""
    return Path(path).name


def check_upload(path: str | Path, dims: int) -> str:
    """The format of an uploaded file ("png", "jpeg", "dicom", "nifti", "zip"), checked from its header only.

    dims=2: PNG/JPEG/DICOM of at most MAX_SIDE pixels a side and MAX_PIXELS in all; dims=3: NIfTI with exactly
    three spatial dimensions (a trailing singleton allowed) and at most MAX_VOXELS, or a zip of a DICOM series."""
    from ..io import sniff

    path = Path(path)
    if dims == 3 and zipfile.is_zipfile(path):
        return "zip"
    try:
        kind = sniff(path)
    except InputError as err:
        reason = str(err).split(": ", 1)[-1]
        raise InputError(f"{_name(path)}: not a medical image medhub can read ({reason})") from None
    if kind in ("png", "jpeg"):
        from PIL import Image

        try:
            with Image.open(path) as image:
                shape = (image.height, image.width)
        except Exception as err:  # noqa: BLE001 - any decoder failure is a corrupt file for the user
            raise InputError(f"{_name(path)}: a corrupt or truncated {kind.upper()} file ({err})") from None
    elif kind == "dicom":
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            shape = (int(getattr(ds, "NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{_name(path)}: a corrupt DICOM file or one without an image ({err})") from None
        shape = shape[1:] if shape[0] == 1 else shape
    else:  # nifti
        import nibabel as nib

        try:
            shape = tuple(int(s) for s in nib.load(path).shape)
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{_name(path)}: a corrupt NIfTI file ({err})") from None
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
    if len(shape) != dims:
        expected = "a 2D image (PNG, JPEG or a single-frame DICOM)" if dims == 2 else \
            "a 3D volume (NIfTI, or a DICOM series as a .zip)"
        raise InputError(f"{_name(path)}: has {len(shape)} dimensions {shape}; this model takes {expected}")
    if dims == 2 and (max(shape) > MAX_SIDE or shape[0] * shape[1] > MAX_PIXELS):
        raise InputError(f"{_name(path)}: {shape[1]}x{shape[0]} pixels is larger than this demo accepts "
                         f"(at most {MAX_SIDE} a side and {MAX_PIXELS // 1_000_000} megapixels); downsample it first")
    if dims == 3 and int(np.prod(shape)) > MAX_VOXELS:
        raise InputError(f"{_name(path)}: {'x'.join(map(str, shape))} voxels is larger than this demo accepts "
                         f"({MAX_VOXELS // 1_000_000} M voxels); crop or resample it first")
    return kind


def unzip_series(path: str | Path, into: Path) -> Path:
    """Extract a zip of one DICOM series (safely: no absolute or '..' names, bounded size); its slice folder."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise InputError(f"{_name(path)}: unpacks to more than {MAX_ZIP_BYTES // 1_000_000} MB")
        for member in members:
            target = (into / member.filename).resolve()
            if not target.is_relative_to(into.resolve()):
                raise InputError(f"{_name(path)}: member {member.filename!r} points outside the archive")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    folders = {p.parent for p in into.rglob("*") if p.is_file() and not p.name.startswith(".")}
    if len(folders) != 1:
        raise InputError(f"{_name(path)}: expected one folder of DICOM slices in the zip, found {len(folders)}")
    return folders.pop()


def upload_folder() -> Path:
    """Where gradio keeps uploads (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


class _Uploads:
    """Deletes uploads once no request uses them, after UPLOAD_GRACE_S.

    Gradio stores an upload under the hash of its content, so two requests uploading the same file share one
    path: deleting it the moment one request ends would break the other, queued request. Each request holds
    its paths (`with uploads.held(*paths)`); when the last holder is done, the file is deleted a few seconds
    later unless another request picked it up meanwhile."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held: dict[Path, int] = {}
        self._due: dict[Path, float] = {}
        self._min_age: dict[Path, float] = {}  # seconds since its last upload before a file may be deleted
        self._sweeper: threading.Thread | None = None

    @contextlib.contextmanager
    def held(self, *paths: str | Path | None):
        mine = [p for p in (_in_upload_folder(p) for p in paths) if p is not None]
        with self._lock:
            for path in mine:
                self._held[path] = self._held.get(path, 0) + 1
                self._due.pop(path, None)
                self._min_age.pop(path, None)
        try:
            for path, given in zip(mine, (p for p in paths if p)):
                if not path.is_file():  # deleted under a concurrent request's grace period: very unlikely
                    raise InputError(f"{Path(given).name}: the upload is no longer on the server; upload it again")
            yield
        finally:
            with self._lock:
                for path in mine:
                    self._held[path] -= 1
                    if self._held[path] == 0:
                        del self._held[path]
                        if not _is_example_copy(path):
                            self._schedule(path)

    def release_unused(self, *paths: str | Path | None) -> None:
        """Uploads of a request that never ran (refused as busy): deleted once REFUSED_UPLOAD_TTL_S old, unless a
        waiting or running request uses the same file (same content, same path) by then."""
        with self._lock:
            for path in (_in_upload_folder(p) for p in paths):
                if path is not None and path not in self._held and not _is_example_copy(path):
                    self._schedule(path, min_age=REFUSED_UPLOAD_TTL_S)

    def _schedule(self, path: Path, min_age: float = UPLOAD_GRACE_S) -> None:  # with the lock held
        self._due[path] = time.monotonic() + min(UPLOAD_GRACE_S, min_age)
        self._min_age[path] = max(min_age, self._min_age.get(path, 0.0))
        if self._sweeper is None or not self._sweeper.is_alive():
            self._sweeper = threading.Thread(target=self._sweep, name="medhub-upload-sweeper", daemon=True)
            self._sweeper.start()

    def _too_young(self, path: Path) -> bool:
        """Uploaded (again) less than its minimum age ago: gradio moves each upload into place, so the file's
        mtime is its latest upload's, possibly for a request that has not joined the queue yet."""
        try:
            return time.time() - path.stat().st_mtime < self._min_age.get(path, UPLOAD_GRACE_S)
        except OSError:
            return False

    def _sweep(self) -> None:
        while True:
            time.sleep(min(1.0, UPLOAD_GRACE_S / 2 + 0.05))
            queued = _queued_paths()
            with self._lock:
                now = time.monotonic()
                for path in [p for p, due in self._due.items() if due <= now]:
                    if path in queued or self._too_young(path):  # a request has (or may soon have) this upload
                        self._due[path] = now + min(UPLOAD_GRACE_S, 1.0)
                    else:
                        del self._due[path]
                        self._min_age.pop(path, None)
                        _delete(path)
                if not self._due:
                    self._sweeper = None  # under the lock: the next _schedule starts a new sweeper
                    return


_APPS: "weakref.WeakSet" = weakref.WeakSet()


def watch_queue(app) -> None:
    """Let the upload sweeper see `app`'s waiting requests (see `_queued_paths`), and delete the uploads of
    requests the queue refuses (full): gradio stores a file when it is uploaded, before the request joins the
    queue, so a refused request's upload would otherwise stay on disk (no handler ever runs to release it)."""
    _APPS.add(app)
    queue = getattr(app, "_queue", None)
    if queue is None or getattr(queue.push, "_medhub_watched", False):
        return
    push = queue.push

    async def push_and_release_refused(body, *args, **kwargs):
        result = await push(body, *args, **kwargs)
        if not result[0]:  # (success, message or event id, state)
            paths: set[Path] = set()
            _collect_paths(getattr(body, "data", None), paths)
            uploads.release_unused(*paths)
        return result

    push_and_release_refused._medhub_watched = True
    queue.push = push_and_release_refused


def _collect_paths(value, found: set[Path]) -> None:
    """Every `{"path": ...}` of a request's data (gradio's FileData), resolved."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            found.add(Path(value["path"]).resolve())
        for item in value.values():
            _collect_paths(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_paths(item, found)


def _queued_paths() -> set[Path]:
    """Upload paths referenced by requests waiting in the queues of the watched apps, or being processed.

    Reads gradio's queue (`Blocks._queue`); if its internals change this finds nothing and the grace period
    alone protects waiting requests."""
    found: set[Path] = set()
    for app in list(_APPS):
        try:
            for event_queue in list(app._queue.event_queue_per_concurrency_id.values()):
                for event in list(event_queue.queue):
                    _collect_paths(getattr(event.data, "data", None), found)
            for running in list(app._queue.active_jobs):  # taken from the queue, handler maybe not entered yet
                for event in list(running or []):
                    _collect_paths(getattr(event.data, "data", None), found)
        except Exception:  # noqa: BLE001 - gradio internals: best effort
            continue
    return found


_EXAMPLES: dict[tuple[str, int], Path] = {}  # (name, size) -> the example's original file


def register_examples(paths: list[str]) -> None:
    """Example files offered in the UI: gradio's copies of them are public sample data, kept for the next click."""
    for path in map(Path, paths):
        _EXAMPLES[(path.name, path.stat().st_size)] = path


def _is_example_copy(path: Path) -> bool:
    original = _EXAMPLES.get((path.name, path.stat().st_size)) if path.is_file() else None
    return original is not None and filecmp.cmp(original, path, shallow=False)


def _in_upload_folder(path: str | Path | None) -> Path | None:
    """`path` resolved when it is an upload in gradio's upload folder (not an example's original), else None."""
    if not path:
        return None
    path, cache = Path(path).resolve(), upload_folder()
    return path if path.is_relative_to(cache) and path != cache else None


def _delete(path: Path) -> None:
    """Delete an upload, keeping its (content-hash) folder: gradio creates that folder and then moves a new
    upload of the same file into it, so removing the folder in between would lose that upload."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


uploads = _Uploads()


def user_errors(fn: Callable) -> Callable:
    """Run a request; any failure becomes a `gr.Error` with a message saying what was wrong with which input."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (MedhubError, ValueError, OSError) as err:
            raise gr.Error(str(err), title="Input not accepted") from None
        except MemoryError:
            raise gr.Error("the input is too large to process on this machine; crop or downsample it") from None
        except Exception as err:  # noqa: BLE001 - the server must keep serving whatever a request does
            raise gr.Error(f"could not process this input: {type(err).__name__}: {err}") from None
    return wrapper


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
    from ..predict import save_png

    return str(save_png(np.ascontiguousarray(array), output_dir() / f"{name}.png"))


def scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Min-max (1st-99th percentile for volumes) scaling to 0..255 for display."""
    array = np.asarray(array, dtype=np.float32)
    low, high = np.percentile(array, [0.5, 99.5]) if array.ndim == 3 else (array.min(), array.max())
    return (np.clip((array - low) / max(float(high - low), 1e-6), 0, 1) * 255).astype(np.uint8)


def model_details(loaded: LoadedModel) -> str:
    config = loaded.model.config
    state = "trained weights" if loaded.trained else "**random weights**"
    return (f"`medhub/{loaded.entry.id}`: {type(loaded.model).__name__}, {loaded.model.num_parameters():,} parameters, "
            f"{state} ({loaded.source}); input: {config.in_channels} channel(s)"
            f"{' ' + str(list(config.channel_names)) if getattr(config, 'channel_names', None) else ''}; "
            f"labels: {', '.join(config.labels)}; running on {device().type.upper()}.")
