"""What a model folder may hold and what a safetensors file may be, checked before anything is loaded.

- `check_model_folder`: config.json present, not pickle-only, every safetensors file (and every shard that
  `model.safetensors.index.json` names: plain `.safetensors` files inside the folder) checked;
- `check_safetensors_file`: the framing (header size and JSON, dtypes, shapes, offsets) and no NaN/Inf in
  floating-point tensors (float8 included); `check_weight_dtypes`: integer tensors where the model has floats are a
  `WeightsMismatchError`. medhub never unpickles: a pickle-only folder is a `PickleWeightsError` that points to
  `medhub convert`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import CorruptWeightsError, ModelNotFoundError, PickleWeightsError, WeightsMismatchError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".pkl", ".pickle", ".ckpt", ".tar")


def pickle_message(where: str, pickles: list[str]) -> str:
    return (
        f"{where} holds only pickle weights ({', '.join(pickles)}); medhub loads safetensors only and never "
        f"unpickles downloaded files. If you trust the file, convert it once with "
        f"`medhub convert {pickles[0]} OUT_DIR --arch ARCH` (which reads it with torch.load, weights_only=True)."
    )


def check_model_folder(folder: Path, need_weights: bool = True, defer: tuple[str, ...] = ()) -> list[Path]:
    """Refuse a folder without config.json, with only pickle weights, or with a corrupt safetensors file.

    Every `*.safetensors` file of the folder, and every shard `model.safetensors.index.json` names (see
    `weight_shards`), is checked by `check_safetensors_file` before anything loads it, except the files named in
    `defer` when the folder has no index: those are returned, and the caller checks them as it reads them
    (`read_checked_safetensors`, which checks the very bytes it returns) or with `check_safetensors_file`."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelNotFoundError(f"{folder} has no {CONFIG_NAME}; a medhub model folder holds {CONFIG_NAME} + "
                                 f"{WEIGHTS_NAME}")
    if not need_weights:
        return []
    weights = sorted(folder.glob("*.safetensors"))
    if not weights and not (folder / WEIGHTS_INDEX_NAME).exists():
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise PickleWeightsError(pickle_message(f"folder {folder}", pickles))
        raise ModelNotFoundError(f"{folder} has no {WEIGHTS_NAME}")
    shards = weight_shards(folder) if (folder / WEIGHTS_INDEX_NAME).exists() else []
    deferred = [] if shards else [file for file in weights if file.name in defer]
    for file in dict.fromkeys(weights + shards):
        if file not in deferred:
            check_safetensors_file(file)
    return deferred


def _refuse_non_finite(text: str):
    raise ValueError(f"{text} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf: as invalid as the Infinity literal
        raise ValueError(f"{text} is not a finite number")
    return value


def weight_shards(folder: Path) -> list[Path]:
    """The shard files `model.safetensors.index.json` names, each a `.safetensors` file of this folder.

    Refused (CorruptWeightsError naming the index): an index that is not a JSON object with a non-empty
    `weight_map` of tensor name -> file name (a list, non-finite numbers such as 1e999, ...), and any entry
    that is not a plain `*.safetensors` file name, is missing, is not a regular file, or is a symlink
    leading outside the folder (in the Hugging Face cache, symlinks into the repo's own blobs are the norm).
    `pytorch_model.bin` or any other pickle in an index is refused: medhub never unpickles."""
    folder = Path(folder)
    index = folder / WEIGHTS_INDEX_NAME
    try:
        data = json.loads(index.read_text(encoding="utf-8"), parse_constant=_refuse_non_finite,
                          parse_float=_finite_float)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CorruptWeightsError(f"{index}: not a readable JSON index ({type(err).__name__}: {err})") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptWeightsError(f"{index}: expected a JSON object with a non-empty 'weight_map' "
                                  f"(tensor name -> shard file), got {type(data).__name__} {str(data)[:80]!r}")
    if not isinstance(data.get("metadata", {}), dict):
        raise CorruptWeightsError(f"{index}: 'metadata' must be an object, got {type(data['metadata']).__name__}")
    roots = [folder.resolve()]
    if folder.parent.name == "snapshots" and (folder.parent.parent / "blobs").is_dir():
        roots.append((folder.parent.parent / "blobs").resolve())
    shards: list[Path] = []
    for name in weight_map.values():
        if isinstance(name, str) and folder / name in shards:
            continue
        if not isinstance(name, str) or not name.endswith(".safetensors") or name != Path(name).name \
                or name in (".", "..") or "\\" in name or "\x00" in name:
            raise CorruptWeightsError(
                f"{index}: weight_map names {name!r}; expected a .safetensors file name inside {folder} (no folders, "
                "'..' or absolute paths; pickle weights such as pytorch_model.bin are never loaded)")
        file = folder / name
        target = file.resolve()
        if not any(target == root or root in target.parents for root in roots):
            raise CorruptWeightsError(f"{index}: shard {name!r} leads outside the model folder (to {target}); "
                                      "expected a file inside it")
        if not file.exists():
            raise CorruptWeightsError(f"{index}: shard {name!r} is missing from {folder} (incomplete download?)")
        shards.append(file)
    return shards


def _open_regular(file: Path):
    """Open `file` for reading without blocking (a FIFO would wait for a writer forever) and refuse anything
    but a regular file: a FIFO, a device such as /dev/zero, a folder."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise CorruptWeightsError(f"{file}: cannot be opened ({err.strerror or err})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise CorruptWeightsError(f"{file}: is {kind}; expected a regular safetensors file")
    return os.fdopen(fd, "rb")


# safetensors' own limit on the JSON header (the Rust loader refuses more: SafetensorError).
MAX_SAFETENSORS_HEADER = 100_000_000
MAX_TENSOR_ELEMENTS = 2**50  # far beyond any real tensor; keeps shape products inside the Rust loader's usize
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
            "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
# The safetensors dtypes medhub's own loader (`modeling_utils._fast_load`) reads into torch tensors; files with
# the others go through transformers' loader.
TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                "BOOL": torch.bool}


def read_safetensors_header(file: Path, max_header: int = MAX_SAFETENSORS_HEADER) -> tuple[dict, int]:
    """(header, data start) of a safetensors file, its framing checked (see `check_safetensors_file`);
    raises CorruptWeightsError naming the file."""
    file = Path(file)
    try:
        with _open_regular(file) as fh:
            size = os.fstat(fh.fileno()).st_size
            n = _header_length(fh.read(8), size, max_header)
            header = json.loads(fh.read(n))
        _check_header(header, size - 8 - n)
    except _FRAMING_ERRORS as err:
        raise CorruptWeightsError(f"{file}: not a valid safetensors file: {err}") from None
    return header, 8 + n


def read_checked_safetensors(file: Path, max_header: int = MAX_SAFETENSORS_HEADER) -> tuple[dict, torch.Tensor, int]:
    """(header, the whole file's bytes as a uint8 tensor, data start): the file read once, and every check of
    `check_safetensors_file` (framing, NaN/Inf) made on the very bytes returned, so what a caller loads from them
    is what was checked. Raises CorruptWeightsError naming the file."""
    file = Path(file)
    try:
        with _open_regular(file) as fh:
            size = os.fstat(fh.fileno()).st_size
            data = torch.empty(size, dtype=torch.uint8)  # not zero-filled, unlike a bytearray
            view, got = memoryview(data.numpy()), 0
            while got < size:
                chunk = fh.raw.readinto(view[got:])
                if not chunk:
                    raise ValueError(f"file is {got} bytes, shorter than the {size} it had when opened")
                got += chunk
        n = _header_length(bytes(view[:8]), size, max_header)
        header = json.loads(bytes(view[8:8 + n]))
        _check_header(header, size - 8 - n)
        _check_finite(data.numpy(), header, 8 + n)
    except _FRAMING_ERRORS as err:
        raise CorruptWeightsError(f"{file}: not a valid safetensors file: {err}") from None
    return header, data, 8 + n


_FRAMING_ERRORS = (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError, struct.error,
                   RecursionError)


def _header_length(raw: bytes, size: int, max_header: int) -> int:
    """The header length that the first 8 bytes `raw` of a `size`-byte safetensors file declare, checked."""
    if len(raw) < 8:
        raise ValueError(f"file is {size} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw)
    if n > size - 8:
        raise ValueError(f"declared header length {n} exceeds the file size {size}")
    if n > max_header:
        raise ValueError(f"declared header length {n:,} is over safetensors' limit of {max_header:,} bytes")
    return n


def _check_header(header, data_size: int) -> None:
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    spans = []
    for name, meta in header.items():
        if name == "__metadata__":
            if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
                raise ValueError("__metadata__ is not a mapping of strings")
            continue
        if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"tensor {name!r}: expected exactly dtype, shape and data_offsets, got {meta!r:.100}")
        if not isinstance(meta["shape"], list) or not isinstance(meta["data_offsets"], list) \
                or len(meta["data_offsets"]) != 2:
            raise ValueError(f"tensor {name!r}: shape must be a list and data_offsets a [start, end] pair")
        start, end = meta["data_offsets"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in [start, end, *meta["shape"]]):
            raise ValueError(f"tensor {name!r}: offsets and shape must be non-negative integers")
        spans.append((start, end, name))
        count = 1
        for d in meta["shape"]:
            count *= int(d)
            if count > MAX_TENSOR_ELEMENTS or d > MAX_TENSOR_ELEMENTS:  # as the Rust loader multiplies: in order
                raise ValueError(f"tensor {name!r} has an absurd shape {meta['shape']} (over 2**50 elements)")
        if meta["dtype"] not in ITEMSIZE:
            raise ValueError(f"tensor {name!r} has unknown dtype {meta['dtype']!r}")
        if not 0 <= start <= end <= data_size or end - start != count * ITEMSIZE[meta["dtype"]]:
            raise ValueError(
                f"tensor {name!r} spans bytes {start}..{end} but the data area has {data_size} bytes "
                f"and dtype/shape need {count * ITEMSIZE[meta['dtype']]} (truncated or corrupt)"
            )
    covered = 0
    for start, end, name in sorted(spans):
        if start != covered:
            raise ValueError(f"tensor {name!r} starts at byte {start}, expected {covered} (overlap or gap)")
        covered = end
    if covered != data_size:
        raise ValueError(f"the tensors cover {covered} bytes of a {data_size}-byte data area (extra or missing data)")


def check_safetensors_file(file: Path, max_header: int = MAX_SAFETENSORS_HEADER) -> dict:
    """Validate a safetensors file's framing and values without loading it; return its header.

    Checks: a regular file (not a FIFO or device), 8-byte header length within the file and within
    safetensors' own limit, a JSON header, every tensor's shape sane and its byte range inside the data area
    and consistent with its dtype, and no NaN/Inf in floating-point tensors (float8 included). A truncated
    download or a corrupt file fails here with its name, instead of deep inside the loader.
    """
    header, data_start = read_safetensors_header(file, max_header)
    try:
        _check_finite(np.memmap(file, dtype=np.uint8, mode="r"), header, data_start)
    except ValueError as err:
        raise CorruptWeightsError(f"{file}: not a valid safetensors file: {err}") from None
    return header


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files the loader reads for `folder`: the index's shards, else model.safetensors."""
    folder = Path(folder)
    return weight_shards(folder) if (folder / WEIGHTS_INDEX_NAME).exists() else [folder / WEIGHTS_NAME]


def check_weight_dtypes(folder: Path, model) -> None:
    """Refuse integer or boolean tensors in the weight files where the model holds floating-point ones (a
    `U8` conv weight would load as 255.0): WeightsMismatchError naming the tensors. Headers only."""
    state = {k: v.dtype for k, v in model.state_dict().items()}
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    wrong = []
    for file in weight_files(folder):
        header, _ = read_safetensors_header(file)
        for name, meta in header.items():
            if name == "__metadata__" or meta["dtype"] not in _INTEGER_DTYPES:
                continue
            key = next((k for k in (name, name.removeprefix(prefix), prefix + name) if k in state), None)
            if key is not None and state[key].is_floating_point:
                wrong.append(f"{name} ({meta['dtype']}, the model's is {str(state[key]).replace('torch.', '')})")
    if wrong:
        raise WeightsMismatchError(f"{folder}: integer weights where the model expects floating-point ones: "
                                   + ", ".join(sorted(wrong)[:12]) + (f" and {len(wrong) - 12} more" if len(wrong) > 12
                                                                      else ""))


_INTEGER_DTYPES = ("I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL")


# Per float dtype of safetensors: the integer view of its bits, and the exponent field; a value is NaN or Inf
# exactly when its bits without the sign are >= the exponent field with all ones.
# float8: E5M2 is IEEE-like (0x7C Inf, above it NaN); E4M3 (the "fn" variant safetensors stores) has no Inf and
# one NaN pattern per sign, 0x7F: "bits without the sign >= 0x7F".
_FLOAT_BITS = {"F16": ("int16", 0x7FFF, 0x7C00), "BF16": ("int16", 0x7FFF, 0x7F80),
               "F32": ("int32", 0x7FFFFFFF, 0x7F800000), "F64": ("int64", 0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000),
               "F8_E5M2": ("int8", 0x7F, 0x7C), "F8_E4M3": ("int8", 0x7F, 0x7F)}


_FINITE_CHUNK = 1 << 18  # values per bit test: the scratch stays in cache and nothing file-sized is allocated


def _all_finite(raw, dtype: str) -> bool:
    """Whether every little-endian `dtype` value in the bytes `raw` is finite (integer bit test, exact)."""
    int_dtype, magnitude, exponent = _FLOAT_BITS[dtype]
    if len(raw) == 0:
        return True
    with warnings.catch_warnings():  # a memory map is read-only; nothing writes to the view
        warnings.simplefilter("ignore", UserWarning)
        bits = torch.frombuffer(memoryview(raw), dtype=getattr(torch, int_dtype))
    scratch = torch.empty(min(len(bits), _FINITE_CHUNK), dtype=bits.dtype)
    for chunk in bits.split(_FINITE_CHUNK):
        masked = torch.bitwise_and(chunk, magnitude, out=scratch[:len(chunk)])
        if int(masked.max()) >= exponent:
            return False
    return True


def _check_finite(raw, header: dict, data_start: int) -> None:
    """Refuse NaN/Inf in the floating-point tensors of a safetensors file's bytes `raw` (a memory map or a
    memoryview): a flipped exponent bit must not load as a silent garbage weight.

    One bit test per contiguous run of same-dtype tensors (exact, and much faster than summing the values);
    only a failing run is checked tensor by tensor, to name the tensor.
    """
    if sys.byteorder != "little":  # safetensors is little-endian; the bit test reads native integers
        raise ValueError("the NaN/Inf check of safetensors files needs a little-endian machine")
    runs: list[list] = []  # [dtype, start, end, names]
    for name, meta in sorted(((k, m) for k, m in header.items() if k != "__metadata__"),
                             key=lambda item: item[1]["data_offsets"][0]):
        start, end = meta["data_offsets"]
        if meta["dtype"] not in _FLOAT_BITS:
            continue
        if runs and runs[-1][0] == meta["dtype"] and runs[-1][2] == start:
            runs[-1][2] = end
            runs[-1][3].append(name)
        else:
            runs.append([meta["dtype"], start, end, [name]])
    for dtype, start, end, names in runs:
        if _all_finite(raw[data_start + start:data_start + end], dtype):
            continue
        for name in names:
            a, b = header[name]["data_offsets"]
            if not _all_finite(raw[data_start + a:data_start + b], dtype):
                raise ValueError(f"tensor {name!r} holds NaN or Inf values")


