"""Uploads to the demos: what is accepted (checked from headers before any pixel is decoded), how a DICOM series
zip is unpacked, and when uploads are deleted.

- `check_upload(path, dims)`: the file's format and size from its header only, so a 10000x10000 PNG or a 4-D
  NIfTI is refused with a message instead of exhausting memory;
- `unzip_series(path, into)`: a zip of one DICOM series, unpacked safely (no absolute or '..' names, bounded size);
- `uploads.held(paths)`: deletes the uploads of a request once it is answered (a few seconds later, so that a
  concurrent request for the same file, which gradio stores at the same path, is still served); `watch_queue`
  lets the sweeper see queued requests and deletes the uploads of requests the full queue refused.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import threading
import time
import weakref
import zipfile
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder

from ..errors import InputError
from ..io import sniff
from ..shared_data import data_dir as shared_data_dir
from ..zoo.catalog import Checkpoint

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


def examples_dir() -> Path | None:
    """MEDHUB_EXAMPLES_DIR, else the shared data folder (../shared/data or MEDHUB_DATA_DIR); None when absent."""
    if os.environ.get("MEDHUB_EXAMPLES_DIR"):
        path = Path(os.environ["MEDHUB_EXAMPLES_DIR"]).expanduser()
        return path if path.is_dir() else None
    return shared_data_dir()


def example_paths(entry: Checkpoint, folder: Path | None) -> list[str]:
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


_APPS: weakref.WeakSet = weakref.WeakSet()


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


__all__ = ["MAX_FILE_SIZE", "MAX_PIXELS", "MAX_SIDE", "MAX_VOXELS", "MAX_ZIP_BYTES", "QUEUE_SIZE", "check_upload",
           "example_paths", "examples_dir", "register_examples", "unzip_series", "upload_folder", "uploads",
           "watch_queue"]
