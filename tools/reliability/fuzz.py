"""Fuzz targets: mutated real files fed to every medhub reader, processor and loader.

Seeds are small files derived from ../shared/data (crops of the real images, written in the same format,
plus a few originals), built once into a seed folder. Each case is `(target, index)`: a generator seeded
with `(base_seed, target, index)` picks a seed file and one or more mutations (bit flips, byte overwrites,
truncation, appended bytes, interesting integers at header offsets, and format-aware edits: DICOM
attributes, NIfTI header fields, PNG IHDR/JPEG SOF sizes with valid CRCs, npy headers, safetensors JSON
headers, config fields with absurd values, NaN/Inf pixels). The case is reproducible from its index.

Outcomes of one case (`run_case`):
    ok             the target returned a result that passes its invariants (see each `check_*`)
    error          a MedhubError whose message names the file (or its folder)
    unnamed-error  a MedhubError that does not name the file                       -> a failure
    foreign-error  any other exception (the reader leaked a library error)         -> a failure
    garbage        a result that breaks an invariant (declared vs actual size, NaN) -> a failure
(`crash` and `hang` are recorded by the runner, which watches the worker process.)
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OK, ERROR = "ok", "error"
FAILURES = ("unnamed-error", "foreign-error", "garbage", "crash", "hang", "harness-error")
INTERESTING = [0, 1, -1, 2, 255, 256, 32767, -32768, 65535, 2**31 - 1, -(2**31), 2**32 - 1, 2**40, 10**9]


# -- generic byte mutations ----------------------------------------------------------------------------------


def _pick(rng, options):
    """One of `options` as the Python object it is (rng.choice would turn lists into arrays)."""
    options = list(options)
    return options[int(rng.integers(0, len(options)))]


def _pos(rng, n: int, head: int = 1024) -> int:
    if n <= 1:
        return 0
    return int(rng.integers(0, min(n, head))) if rng.random() < 0.5 else int(rng.integers(0, n))


def mutate_bytes(data: bytes, rng) -> tuple[bytes, str]:
    buf = bytearray(data)
    kind = _pick(rng, ["bitflip", "byteset", "truncate", "append", "dupchunk", "zero", "int"])
    n = len(buf)
    if n == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)), "random"
    if kind == "bitflip":
        k = int(rng.integers(1, 17))
        for _ in range(k):
            p = _pos(rng, n)
            buf[p] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf), f"bitflip x{k}"
    if kind == "byteset":
        k = int(rng.integers(1, 9))
        for _ in range(k):
            buf[_pos(rng, n)] = int(_pick(rng, [0, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
        return bytes(buf), f"byteset x{k}"
    if kind == "truncate":
        cut = _pos(rng, n, head=2048)
        return bytes(buf[:cut]), f"truncate to {cut}/{n}"
    if kind == "append":
        extra = bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8))
        return bytes(buf) + extra, f"append {len(extra)}"
    if kind == "dupchunk":
        a = _pos(rng, n)
        b = min(n, a + int(rng.integers(1, 512)))
        return bytes(buf[:b] + buf[a:b] + buf[b:]), f"dupchunk {a}:{b}"
    if kind == "zero":
        a = _pos(rng, n)
        b = min(n, a + int(rng.integers(1, 256)))
        buf[a:b] = bytes(b - a)
        return bytes(buf), f"zero {a}:{b}"
    value = int(_pick(rng, INTERESTING))
    width = int(_pick(rng, [2, 4, 8]))
    p = _pos(rng, max(n - width, 1))
    buf[p:p + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(buf[:n]), f"int {value} ({width} B) at {p}"


# -- seeds -----------------------------------------------------------------------------------------------------


def build_seeds(data_dir: Path, seed_dir: Path) -> dict[str, list[Path]]:
    """Write the seed files (crops of the real data in their formats) once; return target -> seed paths."""
    import nibabel as nib
    import pydicom
    from PIL import Image
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    seed_dir.mkdir(parents=True, exist_ok=True)
    done = seed_dir / ".complete"
    xr = data_dir / "chest-xray-samples"
    dcm = next(xr.glob("1.2.276*.dcm"))
    seeds: dict[str, list[Path]] = {}
    # DICOM: the real JPEG-compressed radiograph, its MONOCHROME1 variant, an uncompressed 96x96 crop.
    crop = seed_dir / "dicom" / "crop96.dcm"
    series = seed_dir / "series"
    seeds["dicom"] = [dcm, xr / "Fake_MONOHR1.dcm", crop, crop]
    seeds["dicom-series"] = [series]
    nii, niigz = seed_dir / "nifti" / "flair_crop.nii", seed_dir / "nifti" / "flair_crop.nii.gz"
    seeds["nifti"] = [nii, niigz, niigz]
    png16 = seed_dir / "images" / "chest_crop16.png"
    seeds["image"] = [data_dir / "isbi2012-em/train/image/0.png", xr / "16747_3_1.jpg", png16,
                      seed_dir / "images" / "tb_crop.png", seed_dir / "images" / "isbi_crop.jpg"]
    small_npz = seed_dir / "medmnist" / "pneumoniamnist_small.npz"
    seeds["medmnist"] = [small_npz, small_npz, small_npz, data_dir / "pneumoniamnist/pneumoniamnist_trainval.npz"]
    seeds["safetensors"] = [seed_dir / "model"]
    seeds["config"] = [seed_dir / "model"]
    seeds["preprocessor"] = [seed_dir / f"processor-{k}" for k in ("radiograph", "greyscale", "volume")]
    seeds["weights-index"] = [seed_dir / "sharded"]
    seeds["checkpoint"] = [seed_dir / "checkpoint" / "unet.pth"]
    if done.is_file():
        _build_weight_seeds(seed_dir)
        return seeds

    (seed_dir / "dicom").mkdir(exist_ok=True)
    ds = pydicom.dcmread(dcm)
    pixels = ds.pixel_array[464:560, 464:560].astype(np.uint8)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod"):
        if keyword in ds:
            del ds[keyword]
    ds.WindowCenter, ds.WindowWidth, ds.RescaleSlope, ds.RescaleIntercept = 128, 256, 1, 0
    ds.save_as(crop, enforce_file_format=True)
    series.mkdir(exist_ok=True)
    uid = generate_uid()
    for k in range(4):
        s = pydicom.dcmread(crop)
        s.PixelData = np.ascontiguousarray(pixels[8 * k:8 * k + 64, :64]).tobytes()
        s.Rows, s.Columns = 64, 64
        s.SeriesInstanceUID, s.SOPInstanceUID = uid, generate_uid()
        s.file_meta.MediaStorageSOPInstanceUID = s.SOPInstanceUID
        s.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        s.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
        s.InstanceNumber = k + 1
        s.SliceThickness = 2.5
        s.save_as(series / f"slice{k}.dcm", enforce_file_format=True)

    (seed_dir / "nifti").mkdir(exist_ok=True)
    flair = nib.load(str(next((data_dir / "brats2015-examples").glob("*/Flair_subtrMeanDivStd.nii.gz"))))
    cropped = flair.slicer[100:132, 100:132, 70:86]
    image = nib.Nifti1Image(np.asarray(cropped.dataobj, dtype=np.float32), cropped.affine)
    nib.save(image, str(nii))
    nib.save(image, str(niigz))

    (seed_dir / "images").mkdir(exist_ok=True)
    chest = np.asarray(Image.open(xr / "00000001_000.png").convert("L"))[400:528, 400:528]
    Image.fromarray(chest.astype(np.uint16) * 257).save(png16)
    Image.open(xr / "tb0005.png").convert("RGB").crop((200, 200, 328, 328)).save(seed_dir / "images" / "tb_crop.png")
    Image.open(data_dir / "isbi2012-em/train/image/1.png").crop((0, 0, 128, 128)).save(
        seed_dir / "images" / "isbi_crop.jpg", quality=90)

    (seed_dir / "medmnist").mkdir(exist_ok=True)
    with np.load(data_dir / "pneumoniamnist/pneumoniamnist_trainval.npz") as data:
        small = {k: data[k][:32] for k in data.files}
    np.savez(small_npz, **small)

    import torch

    from medhub.auto import MedConfig, MedModel
    from medhub.processing import GreyscaleImageProcessor, RadiographImageProcessor, VolumeImageProcessor

    torch.manual_seed(0)
    config = MedConfig.for_model("medhub-unet", in_channels=1, num_labels=2, base_width=2, depth=1, padding="same")
    MedModel.from_config(config).save_pretrained(seed_dir / "model")
    RadiographImageProcessor(size=32).save_pretrained(seed_dir / "processor-radiograph")
    GreyscaleImageProcessor(do_resize=True, size=32, do_normalize=True, image_mean=[0.5], image_std=[0.2]
                            ).save_pretrained(seed_dir / "processor-greyscale")
    VolumeImageProcessor(target_spacing=[2.0, 2.0, 2.0], intensity_normalization="zscore"
                         ).save_pretrained(seed_dir / "processor-volume")
    _build_weight_seeds(seed_dir)
    done.write_text("ok")
    return seeds


def _build_weight_seeds(seed_dir: Path) -> None:
    """The seed model saved in shards with an index, and its state dict as a torch.save checkpoint."""
    if (seed_dir / "checkpoint" / "unet.pth").is_file():
        return
    import torch

    from medhub.auto import MedModel

    model = MedModel.from_pretrained(seed_dir / "model")
    model.save_pretrained(seed_dir / "sharded", max_shard_size=200)
    (seed_dir / "checkpoint").mkdir(exist_ok=True)
    torch.save(model.state_dict(), seed_dir / "checkpoint" / "unet.pth")


# -- format-aware mutations ----------------------------------------------------------------------------------


def _weird_number(rng):
    return _pick(rng, [0, -1, 1e-30, 1e30, 1e308, float("nan"), float("inf"), -float("inf"), 10**9, 2**63, 3.5])


def mutate_dicom_dataset(path: Path, out: Path, rng) -> str:
    import pydicom
    from pydicom import config as pconfig

    pconfig.settings.writing_validation_mode = pconfig.IGNORE
    ds = pydicom.dcmread(path)
    edits, bomb = [], 0
    for _ in range(int(rng.integers(1, 4))):
        what = _pick(rng, ["rows", "cols", "frames", "bits", "spp", "pixrep", "photometric", "slope", "window",
                           "spacing", "pixeldata", "syntax", "position", "orientation", "seriesuid", "delete",
                           "deflate", "deflate-bomb"])
        if what == "deflate-bomb":  # the data set deflated, its PixelData inflating to 16 MiB .. 256 MiB of zeros
            bomb = int(_pick(rng, [16 << 20, 256 << 20]))
            edits.append(f"deflate-bomb {bomb >> 20} MiB")
            continue
        try:
            what = _dicom_edit(ds, what, rng)
        except Exception as err:  # noqa: BLE001 - pydicom will not hold such a value, or the edit needs a gone attribute
            what = f"{what} (not representable: {type(err).__name__})"
        edits.append(str(what))
    try:
        if bomb:
            from .bombs import deflated_dicom

            deflated_dicom(ds, bomb, out)
        else:
            ds.save_as(out, enforce_file_format=False)
    except Exception as err:  # pydicom refused to write the edit: fall back to a byte mutation
        data, desc = mutate_bytes(path.read_bytes(), rng)
        out.write_bytes(data)
        return f"bytes {desc} (write of {edits} failed: {type(err).__name__})"
    return "dicom " + ", ".join(edits)


def _dicom_edit(ds, what, rng) -> str:
    if what in ("rows", "cols"):
        v = int(_pick(rng, [0, 1, 7, 65535, 2 * int(ds.Rows), max(1, int(ds.Rows) // 2)]))
        setattr(ds, "Rows" if what == "rows" else "Columns", v)
    elif what == "frames":
        v = int(_pick(rng, [0, 2, 3, 1000, 10**9, -1]))
        ds.NumberOfFrames = v
    elif what == "bits":
        v = int(_pick(rng, [0, 1, 8, 12, 16, 32, 64, 7]))
        ds.BitsAllocated = v
        if rng.random() < 0.5:
            ds.BitsStored = int(_pick(rng, [0, 1, 8, 12, 16, 40]))
    elif what == "spp":
        ds.SamplesPerPixel = int(_pick(rng, [0, 2, 3, 4]))
        ds.PlanarConfiguration = int(_pick(rng, [0, 1]))
    elif what == "pixrep":
        ds.PixelRepresentation = int(_pick(rng, [0, 1, 2]))
    elif what == "photometric":
        ds.PhotometricInterpretation = str(_pick(rng, ["MONOCHROME1", "RGB", "YBR_FULL", "PALETTE COLOR", "XYZ", ""]))
    elif what == "slope":
        v = _weird_number(rng)
        ds.add_new(0x00281053, "DS", str(v))
        v = str(_pick(rng, ["0", "nan", "1e400", "-1e38", "abc"]))
        ds.add_new(0x00281052, "DS", v)
        what = f"slope/intercept {v}"
    elif what == "window":
        ds.add_new(0x00281050, "DS", str(_weird_number(rng)))
        ds.add_new(0x00281051, "DS", str(_pick(rng, ["0", "-5", "nan", "inf", "1"])))
    elif what == "spacing":
        ds.add_new(0x00280030, "DS", _pick(rng, ["0\\0", "nan\\1", "abc", "1", "-1\\-1", "1e400\\1"]))
    elif what == "pixeldata":
        raw = ds.PixelData
        choice = _pick(rng, ["short", "long", "empty", "odd"])
        ds.PixelData = {"short": raw[: len(raw) // 2], "long": raw + raw, "empty": b"", "odd": raw[:-1]}[choice]
        what = f"pixeldata {choice}"
    elif what == "syntax":
        from pydicom import uid as U

        ds.file_meta.TransferSyntaxUID = _pick(rng, [U.ImplicitVRLittleEndian, U.ExplicitVRBigEndian,
                                                     U.JPEG2000Lossless, U.RLELossless, U.JPEGBaseline8Bit,
                                                     U.DeflatedExplicitVRLittleEndian, "1.2.3.4"])
        what = f"syntax {ds.file_meta.TransferSyntaxUID}"
    elif what == "position":
        ds.add_new(0x00200032, "DS", _pick(rng, ["0\\0\\0", "nan\\0\\0", "1\\2", "0\\0\\1e400", "0\\0\\2.5"]))
    elif what == "orientation":
        ds.add_new(0x00200037, "DS", _pick(rng, ["0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "nan\\0\\0\\0\\1\\0",
                                                 "1\\0\\0", "1\\0\\0\\0\\1\\0\\0"]))
    elif what == "seriesuid":
        ds.SeriesInstanceUID = "1.2.3.999"
    elif what == "deflate":  # pydicom writes the data set deflated (a valid file when the pixels are native)
        from pydicom.uid import DeflatedExplicitVRLittleEndian

        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    else:
        keyword = str(_pick(rng, ["Rows", "Columns", "BitsAllocated", "PixelData", "SamplesPerPixel",
                                  "PhotometricInterpretation", "PixelRepresentation", "SOPClassUID",
                                  "ImagePositionPatient", "PixelSpacing", "InstanceNumber"]))
        if keyword in ds:
            delattr(ds, keyword)
        what = f"delete {keyword}"
    return what


def mutate_nifti_header(raw: bytes, rng) -> tuple[bytes, str]:
    buf = bytearray(raw)
    edits = []
    for _ in range(int(rng.integers(1, 4))):
        field = _pick(rng, ["dim", "ndim", "datatype", "bitpix", "pixdim", "vox_offset", "scl", "srow", "quatern",
                            "magic", "nan-voxels", "sform_code"])
        if field == "dim":
            k = int(rng.integers(1, 5))
            v = int(_pick(rng, [0, -1, 1, 2, 31, 64, 1000, 32767]))
            struct.pack_into("<h", buf, 40 + 2 * k, v)
            field = f"dim[{k}]={v}"
        elif field == "ndim":
            v = int(_pick(rng, [0, 1, 2, 4, 5, 7, 8, -1]))
            struct.pack_into("<h", buf, 40, v)
            field = f"dim[0]={v}"
        elif field == "datatype":
            v = int(_pick(rng, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 77]))
            struct.pack_into("<h", buf, 70, v)
            field = f"datatype={v}"
        elif field == "bitpix":
            struct.pack_into("<h", buf, 72, int(_pick(rng, [0, 1, 8, 16, 64, 128])))
        elif field == "pixdim":
            k = int(rng.integers(0, 4))
            v = float(_pick(rng, [0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e30, 1000.0]))
            struct.pack_into("<f", buf, 76 + 4 * k, v)
            field = f"pixdim[{k}]={v}"
        elif field == "vox_offset":
            v = float(_pick(rng, [0.0, 100.0, 352.0, 353.0, 1e9, -352.0, float("nan")]))
            struct.pack_into("<f", buf, 108, v)
            field = f"vox_offset={v}"
        elif field == "scl":
            v = float(_pick(rng, [float("nan"), float("inf"), 0.0, 1e38, -1.0]))
            struct.pack_into("<f", buf, 112 + 4 * int(rng.integers(0, 2)), v)
            field = f"scl={v}"
        elif field == "srow":
            k = int(rng.integers(0, 12))
            v = float(_pick(rng, [float("nan"), float("inf"), 0.0, 1e30]))
            struct.pack_into("<f", buf, 280 + 4 * k, v)
            if rng.random() < 0.5:
                for j in range(12):
                    struct.pack_into("<f", buf, 280 + 4 * j, 0.0)
                v = "all 0"
            field = f"srow[{k}]={v}"
        elif field == "sform_code":
            struct.pack_into("<hh", buf, 252, int(_pick(rng, [0, 1, 2, 9])), int(_pick(rng, [0, 1, 4, -3])))
        elif field == "quatern":
            struct.pack_into("<f", buf, 256 + 4 * int(rng.integers(0, 6)), float(_pick(rng, [float("nan"), 5.0, 1e30])))
        elif field == "magic":
            buf[344:348] = _pick(rng, [b"ni1\x00", b"n+2\x00", b"xxxx", b"n+1\x00"])
        else:
            offset = 352  # the seeds are written by nibabel with vox_offset 352
            count = int(rng.integers(1, 20))
            for _ in range(count):
                p = offset + 4 * int(rng.integers(0, max(1, (len(buf) - offset) // 4)))
                if 352 <= p <= len(buf) - 4:
                    struct.pack_into("<f", buf, p, float(_pick(rng, [float("nan"), float("inf"), -float("inf")])))
            field = f"{count} NaN/Inf voxels"
        edits.append(str(field))
    return bytes(buf), "nifti " + ", ".join(edits)


def _png_chunks(data: bytes):
    pos, out = 8, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        out.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _png_write(chunks) -> bytes:
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return bytes(out)


def mutate_image_structure(raw: bytes, rng) -> tuple[bytes, str]:
    if raw.startswith(b"\x89PNG"):
        chunks = _png_chunks(raw)
        ihdr = bytearray(chunks[0][1])
        what = _pick(rng, ["width", "height", "bitdepth", "colortype", "interlace", "drop-idat", "dup-idat", "bomb"])
        if what in ("width", "height"):
            v = int(_pick(rng, [0, 1, 2, 100000, 2**31 - 1, 2**32 - 1, int(struct.unpack(">I", ihdr[0:4])[0]) * 2]))
            struct.pack_into(">I", ihdr, 0 if what == "width" else 4, v % 2**32)
            what = f"{what}={v}"
        elif what == "bitdepth":
            ihdr[8] = int(_pick(rng, [1, 2, 3, 4, 8, 16, 32]))
            what = f"bitdepth={ihdr[8]}"
        elif what == "colortype":
            ihdr[9] = int(_pick(rng, [0, 1, 2, 3, 4, 5, 6, 7]))
            what = f"colortype={ihdr[9]}"
        elif what == "interlace":
            ihdr[12] = int(_pick(rng, [1, 2]))
        elif what == "bomb":  # a small file declaring a huge image (decompression bomb)
            struct.pack_into(">II", ihdr, 0, 50000, 50000)
            body = zlib.compress(b"\x00" * (50001 * 64), 9)
            chunks = [(k, b) for k, b in chunks if k != b"IDAT"]
            chunks.insert(1, (b"IDAT", body))
        chunks[0] = (b"IHDR", bytes(ihdr))
        if what == "drop-idat":
            idats = [i for i, (k, _) in enumerate(chunks) if k == b"IDAT"]
            if idats:
                del chunks[idats[int(rng.integers(0, len(idats)))]]
        elif what == "dup-idat":
            idats = [i for i, (k, _) in enumerate(chunks) if k == b"IDAT"]
            if idats:
                chunks.insert(idats[-1], chunks[idats[0]])
        return _png_write(chunks), f"png {what} (CRC fixed)"
    # JPEG: edit the SOF0/SOF2 frame header (height, width, components)
    buf = bytearray(raw)
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        p = raw.find(marker)
        if p >= 0:
            what = _pick(rng, ["height", "width", "components", "precision", "eoi"])
            if what == "height":
                struct.pack_into(">H", buf, p + 5, int(_pick(rng, [0, 1, 65535, 30000])))
            elif what == "width":
                struct.pack_into(">H", buf, p + 7, int(_pick(rng, [0, 1, 65535, 30000])))
            elif what == "components":
                buf[p + 9] = int(_pick(rng, [0, 2, 3, 4, 255]))
            elif what == "precision":
                buf[p + 4] = int(_pick(rng, [0, 12, 16, 255]))
            else:
                buf = buf[:-2] if buf.endswith(b"\xff\xd9") else buf
            return bytes(buf), f"jpeg SOF {what}"
    return mutate_bytes(raw, rng)


def _npy_bytes(array: np.ndarray, shape_override=None, dtype_override=None) -> bytes:
    bio = io.BytesIO()
    np.lib.format.write_array(bio, array, allow_pickle=True)
    data = bio.getvalue()
    if shape_override is None and dtype_override is None:
        return data
    header = {"descr": dtype_override or np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
              "shape": shape_override if shape_override is not None else array.shape}
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, header)
    (hlen,) = struct.unpack("<H", data[8:10])
    return hdr.getvalue() + data[10 + hlen:]


def mutate_npz(path: Path, out: Path, rng) -> str:
    import zipfile

    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    edits = []
    raw_members: dict[str, bytes] = {}
    for _ in range(int(rng.integers(1, 3))):
        key = str(_pick(rng, sorted(arrays)))
        what = _pick(rng, ["float-nan", "dtype", "ndim", "labels-len", "labels-nan", "drop", "object", "huge-shape",
                           "short-data", "empty", "fortran"])
        a = arrays.get(key)
        if a is None:
            continue
        if what == "float-nan":
            f = a.astype(np.float32)
            f.flat[int(rng.integers(0, f.size))] = np.nan
            arrays[key] = f
        elif what == "dtype":
            arrays[key] = a.astype(_pick(rng, [np.int64, np.float64, np.int8, np.uint16, np.bool_]))
        elif what == "ndim":
            arrays[key] = a.reshape(-1) if rng.random() < 0.5 else a[..., None, None]
        elif what == "labels-len":
            lk = key.replace("images", "labels")
            arrays[lk] = arrays[lk][:-3]
        elif what == "labels-nan":
            lk = key.replace("images", "labels")
            arrays[lk] = np.full(arrays[lk].shape, np.nan)
        elif what == "drop":
            del arrays[key]
        elif what == "object":
            arrays[key] = np.array([{"a": 1}, None], dtype=object)
        elif what == "empty":
            arrays[key] = a[:0]
        elif what == "fortran":
            arrays[key] = np.asfortranarray(a)
        elif what in ("huge-shape", "short-data"):
            shape = (10**7, 10**7) if what == "huge-shape" else (a.shape[0] * 4,) + a.shape[1:]
            raw_members[key] = _npy_bytes(a, shape_override=shape)
        edits.append(f"{key}:{what}")
    with zipfile.ZipFile(out, "w") as zf:
        for key, a in arrays.items():
            zf.writestr(f"{key}.npy", raw_members.get(key) or _npy_bytes(a))
    return "npz " + ", ".join(edits)


def mutate_safetensors(raw: bytes, rng) -> tuple[bytes, str]:
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    names = [k for k in header if k != "__metadata__"]
    name = str(_pick(rng, names))
    meta = header[name]
    what = _pick(rng, ["shape", "dtype", "offsets", "drop", "rename", "nan", "headerlen", "metadata", "extra",
                       "float8", "integer", "absurd-shape", "json-overflow"])
    if what == "float8" and meta["dtype"] == "F32":  # the same bytes as four times as many float8 values
        meta["dtype"], meta["shape"] = str(_pick(rng, ["F8_E4M3", "F8_E5M2"])), [int(np.prod(meta["shape"])) * 4]
        s, e = meta["data_offsets"]
        byte = int(_pick(rng, [0x7F, 0xFF, 0x7C, 0xFC, 0x7E, 0x38]))  # NaN, -NaN, Inf (E5M2), 448 / 0.5 ...
        data[s + int(rng.integers(0, max(e - s, 1)))] = byte
        what = f"float8 {meta['dtype']} with byte {byte:#x} in {name}"
    elif what == "integer" and meta["dtype"] == "F32":  # a float tensor stored as integers of the same size
        meta["dtype"] = str(_pick(rng, ["I32", "U32"]))
        what = f"integer dtype {meta['dtype']} for {name}"
    elif what == "absurd-shape":  # a zero-size tensor whose other dimension overflows the loader's usize
        end = max(m["data_offsets"][1] for k, m in header.items() if k != "__metadata__")
        header["ghost"] = {"dtype": "F32", "shape": _pick(rng, [[2**70, 0], [2**62, 2**62, 0], [0, 2**64]]),
                           "data_offsets": [end, end]}
    elif what == "json-overflow":
        body, desc = json_overflow(json.dumps(header).encode(), rng)
        return struct.pack("<Q", len(body)) + body + bytes(data), f"safetensors header {desc}"
    elif what == "shape":
        meta["shape"] = _pick(rng, [[], [0], [-1], [10**12, 10**12], meta["shape"] + [1], list(meta["shape"])[::-1],
                                    [2**63]])
        what = f"{name} shape={meta['shape']}"
    elif what == "dtype":
        meta["dtype"] = str(_pick(rng, ["F16", "I64", "U8", "F64", "XX", "BOOL"]))
    elif what == "offsets":
        s, e = meta["data_offsets"]
        meta["data_offsets"] = list(_pick(rng, [[e, s], [s, e + 4], [s + 4, e + 4], [-4, e], [s, 2**62], [0, 0]]))
    elif what == "drop":
        del header[name]
    elif what == "rename":
        header[name + "_x"] = header.pop(name)
    elif what == "nan":
        s, e = meta["data_offsets"]
        if meta["dtype"] == "F32" and e > s:
            p = s + 4 * int(rng.integers(0, (e - s) // 4))
            struct.pack_into("<f", data, p, float(_pick(rng, [float("nan"), float("inf")])))
    elif what == "metadata":
        header["__metadata__"] = _pick(rng, [{"format": "pt"}, {"a": 1}, "x", None])
    elif what == "extra":
        header[name]["extra"] = 1
    body = json.dumps(header).encode()
    if what == "headerlen":
        return struct.pack("<Q", int(_pick(rng, [0, 2**63, len(body) + 100, 10**8]))) + body + data, "headerlen"
    return struct.pack("<Q", len(body)) + body + bytes(data), f"safetensors {what} {name}"


def json_overflow(raw: bytes, rng) -> tuple[bytes, str]:
    """One number of a JSON text replaced by 1e999 or -1e999: Python's json parses them to +/-inf (where the
    Infinity literal is refused), so a reader must refuse non-finite numbers itself."""
    import re

    numbers = list(re.finditer(rb"(?<![\w.\"])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.\"])", raw))
    if not numbers:
        return raw + b" 1e999", "json-overflow appended 1e999"
    match = numbers[int(rng.integers(0, len(numbers)))]
    value = _pick(rng, [b"1e999", b"-1e999"])
    mutation = f"json-overflow {match.group().decode()} -> {value.decode()}"
    return raw[:match.start()] + value + raw[match.end():], mutation


def _absurd(rng):
    return _pick(rng, [10**9, -1, 0, 10**18, 1e308, float("nan"), float("inf"), "x", None, [], {}, True, 2.5,
                       [10**9] * 3, "9" * 50])


def mutate_json(raw: bytes, rng) -> tuple[bytes, str]:
    kind = _pick(rng, ["field", "field", "field", "delete", "unknown", "bytes", "nested", "type", "overflow"])
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    if kind == "overflow":
        return json_overflow(raw, rng)
    if kind == "bytes" or not isinstance(obj, dict):
        return mutate_bytes(raw, rng)
    if kind == "nested":
        depth = int(_pick(rng, [50, 1000, 100000]))
        return ("[" * depth + "]" * depth).encode(), f"nested depth {depth}"
    if kind == "type":
        return json.dumps(_pick(rng, [[], 1, "x", None, [obj]])).encode(), "top-level type"
    keys = sorted(obj)
    key = str(_pick(rng, keys))
    if kind == "delete":
        del obj[key]
        return json.dumps(obj).encode(), f"delete {key}"
    if kind == "unknown":
        obj["zz_unknown"] = 1
        return json.dumps(obj).encode(), "unknown key"
    value = _absurd(rng)
    obj[key] = value
    return json.dumps(obj).encode(), f"{key}={str(value)[:40]}"


def mutate_config(raw: bytes, rng) -> tuple[bytes, str]:
    """config.json: the generic JSON mutations, or (half the time) the config-value family
    (`tools.reliability.config_values`: weights_info types/values/1e999, huge sizes, id2label gaps)."""
    from .config_values import mutate_config_values

    return mutate_config_values(raw, rng) if rng.random() < 0.5 else mutate_json(raw, rng)


# -- targets ---------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    describe: str
    mutate: Callable  # (seed, out_dir, rng) -> (path given to run, description)
    run: Callable     # (path) -> result
    check: Callable   # (path, result) -> violation message or None


def _write_mutation(seed: Path, out: Path, rng, structural: Callable | None) -> str:
    raw = seed.read_bytes()
    if structural is not None and rng.random() < 0.6:
        data, desc = structural(raw, rng)
    else:
        data, desc = mutate_bytes(raw, rng)
    if rng.random() < 0.15:  # stack a second generic mutation
        data, more = mutate_bytes(data, rng)
        desc += " + " + more
    out.write_bytes(data)
    return desc


def _finite(a) -> bool:
    return bool(np.isfinite(np.asarray(a, dtype=np.float64)).all())


# DICOM -------------------------------------------------------------------------------------------------------

def _format_or_bytes(name: str, format_aware: Callable):
    """A mutator writing `out_dir/name`: half the cases a format-aware edit, half raw byte mutations."""

    def mutate(seed, out_dir, rng):
        out = out_dir / name
        if rng.random() < 0.5:
            return out, format_aware(seed, out, rng)
        return out, "bytes " + _write_mutation(seed, out, rng, None)

    return mutate


_mutate_dicom = _format_or_bytes("case.dcm", mutate_dicom_dataset)


def _run_dicom(path):
    from medhub.io import read_dicom
    from medhub.processing import RadiographImageProcessor

    image = read_dicom(path)
    if image.number_of_frames > 1 or image.pixels.ndim != 2:
        return image, None
    return image, RadiographImageProcessor(size=32)(image, return_tensors="np")["pixel_values"]


def _check_dicom(path, result):
    image, processed = result
    ds = image.dataset
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1))
    shape = (rows, cols) + ((spp,) if spp > 1 else ())
    shape = ((frames,) if frames > 1 else ()) + shape
    if image.pixels.shape != shape:
        return f"pixels {image.pixels.shape} but the header declares {shape}"
    if image.pixels.dtype != np.float32 or not _finite(image.pixels):
        return "non-finite or non-float32 pixels"
    if processed is not None and (processed.shape != (1, 1, 32, 32) or not _finite(processed)):
        return f"processed {processed.shape} / non-finite"
    return None


# DICOM series ------------------------------------------------------------------------------------------------

def _mutate_series(seed, out_dir, rng):
    folder = out_dir / "series"
    shutil.copytree(seed, folder)
    files = sorted(folder.iterdir())
    victim = files[int(rng.integers(0, len(files)))]
    r = rng.random()
    if r < 0.1:
        op = _pick(rng, ["remove", "duplicate", "junk-file", "empty-file"])
        if op == "remove":
            victim.unlink()
        elif op == "duplicate":
            shutil.copy(victim, folder / "zz_copy.dcm")
        elif op == "junk-file":
            (folder / "notes.txt").write_text("not dicom")
        else:
            (folder / "empty.dcm").write_bytes(b"")
        return folder, f"folder {op} {victim.name}"
    if r < 0.6:
        desc = mutate_dicom_dataset(victim, victim, rng)
    else:
        desc = "bytes " + _write_mutation(victim, victim, rng, None)
    return folder, f"{victim.name}: {desc}"


def _run_series(path):
    from medhub.io import read_dicom_series
    from medhub.processing import VolumeImageProcessor

    volume = read_dicom_series(path)
    return volume, VolumeImageProcessor(orientation="RAS")(volume, return_tensors="np")["pixel_values"]


def _check_volume(volume, expected_shape):
    if tuple(volume.array.shape) != tuple(expected_shape):
        return f"array {volume.array.shape} but the header declares {tuple(expected_shape)}"
    if not _finite(volume.array):
        return "non-finite voxels"
    affine = np.asarray(volume.affine, dtype=np.float64)
    if not _finite(affine) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        return f"singular or non-finite affine {affine.tolist()}"
    if not _finite(volume.spacing) or min(volume.spacing) <= 0:
        return f"spacing {volume.spacing}"
    return None


def _check_series(path, result):
    volume, processed = result
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    ds = volume.header
    bad = _check_volume(volume, (int(ds.Columns), int(ds.Rows), len(files)))
    if bad:
        return bad
    if processed.shape[2:] != volume.array.shape or not _finite(processed):
        return f"processed {processed.shape}"
    return None


# NIfTI -------------------------------------------------------------------------------------------------------

def nifti_bomb(raw: bytes, rng) -> tuple[bytes, str]:
    """A .nii.gz (gzip bytes) built from the seed's header: a 256 MiB header extension, an extension size that
    lies (256 MiB, 0, 8: nibabel reads what it says), a declared shape of 4 GiB, or 256 MiB of zeros after
    the data (read only as far as the header says)."""
    from .bombs import gzip_zeros

    header, data = bytearray(raw[:348]), raw[352:]
    kind = _pick(rng, ["extension", "esize-lie", "shape", "trailing"])
    big = 256 << 20
    if kind == "extension":
        struct.pack_into("<f", header, 108, float(352 + big))
        return gzip_zeros(bytes(header) + b"\x01\x00\x00\x00" + struct.pack("<ii", big, 6), big - 8) + \
            gzip.compress(data, 1), "nifti gz-bomb 256 MiB extension"
    if kind == "esize-lie":
        esize = int(_pick(rng, [big, 0, 8, -16]))
        struct.pack_into("<f", header, 108, 368.0)
        head = bytes(header) + b"\x01\x00\x00\x00" + struct.pack("<ii", esize, 6) + bytes(8)
        return gzip.compress(head + data, 1), f"nifti extension size {esize} (vox_offset 368)"
    if kind == "shape":
        struct.pack_into("<4h", header, 40, 3, 4096, 4096, 64)
        struct.pack_into("<hh", header, 70, 16, 32)
        return gzip.compress(bytes(header) + raw[348:352] + data, 1), "nifti declares 4096x4096x64 float32 (4 GiB)"
    return gzip.compress(raw, 1) + gzip_zeros(b"", big), "nifti 256 MiB of zeros after the data"


def _mutate_nifti(seed, out_dir, rng):
    out = out_dir / seed.name
    if seed.name.endswith(".gz") and rng.random() < 0.1:  # a decompression bomb made from the seed's header
        data, desc = nifti_bomb(gzip.decompress(seed.read_bytes()), rng)
        out.write_bytes(data)
        return out, desc
    if seed.name.endswith(".gz") and rng.random() < 0.7:  # mutate the NIfTI inside the gzip stream
        raw = gzip.decompress(seed.read_bytes())
        data, desc = mutate_nifti_header(raw, rng) if rng.random() < 0.6 else mutate_bytes(raw, rng)
        out.write_bytes(gzip.compress(data, compresslevel=1))
        return out, "inner " + desc
    return out, _write_mutation(seed, out, rng, mutate_nifti_header)


def _run_nifti(path):
    from medhub.io import read_nifti
    from medhub.processing import VolumeImageProcessor

    volume = read_nifti(path)
    processor = VolumeImageProcessor(target_spacing=[2.0, 2.0, 2.0], intensity_normalization="zscore")
    return volume, processor(volume, return_tensors="np")["pixel_values"]


def _check_nifti(path, result):
    volume, processed = result
    dims = [int(d) for d in volume.header["dim"][1:4]]
    bad = _check_volume(volume, dims)
    if bad:
        return bad
    if not _finite(processed) or processed.ndim != 5:
        return f"processed {processed.shape} non-finite"
    return None


# PNG / JPEG --------------------------------------------------------------------------------------------------

def _mutate_image(seed, out_dir, rng):
    out = out_dir / ("case" + seed.suffix)
    return out, _write_mutation(seed, out, rng, mutate_image_structure)


def _run_image(path):
    from medhub.io import read_image
    from medhub.processing import GreyscaleImageProcessor

    image = read_image(path)
    return image, GreyscaleImageProcessor(do_resize=True, size=32)(image, return_tensors="np")["pixel_values"]


def _check_image(path, result):
    from PIL import Image

    image, processed = result
    with Image.open(path) as im:
        width, height = im.size
    if image.pixels.shape[:2] != (height, width):
        return f"pixels {image.pixels.shape} but the header declares {(height, width)}"
    if image.pixels.dtype not in (np.uint8, np.uint16):
        return f"dtype {image.pixels.dtype}"
    if processed.shape != (1, 1, 32, 32) or not _finite(processed):
        return f"processed {processed.shape} non-finite"
    return None


# MedMNIST ----------------------------------------------------------------------------------------------------

_mutate_medmnist = _format_or_bytes("case.npz", mutate_npz)


def _run_medmnist(path):
    from medhub.io import read_medmnist

    return read_medmnist(path, "train"), read_medmnist(path, "val")


def _check_medmnist(path, result):
    for images, labels in result:
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
            return f"images {images.dtype} {images.shape}, labels {labels.shape}"
        if not np.issubdtype(labels.dtype, np.integer):
            return f"labels of dtype {labels.dtype}"
    return None


# safetensors and config.json ---------------------------------------------------------------------------------

def _mutate_model_file(name: str, structural):
    def mutate(seed, out_dir, rng):
        folder = out_dir / "model"
        shutil.copytree(seed, folder)
        desc = _write_mutation(folder / name, folder / name, rng, structural)
        return folder, f"{name}: {desc}"
    return mutate


def _run_model(path):
    from medhub.auto import MedModel

    return MedModel.from_pretrained(path)


def _run_model_and_metadata(path):
    """Load, then read the metadata the way `medhub predict`, the inferers and the model card do."""
    from medhub.inference import instance_options
    from medhub.model_card import generate_model_card

    model = _run_model(path)
    instance_options(model)
    model.inferer()
    generate_model_card(model)
    return model


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not np.isfinite(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_non_finite(v) for v in items)


def _saved_weights(path: Path) -> dict:
    """Every tensor of the weight files in `path` (the index's shards, else model.safetensors), read by the
    checker itself with safetensors (torch: float8 included)."""
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    names = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \
        else ["model.safetensors"]
    saved = {}
    for name in names:
        saved.update(load_file(str(path / name)))
    return saved


def _check_model(path, result):
    saved = _saved_weights(path)
    state = result.state_dict()
    if set(saved) != set(state):
        return "state dict keys differ from the file's"
    for key, value in saved.items():
        loaded = state[key]
        if not value.is_floating_point() and loaded.is_floating_point():
            return f"{key}: {value.dtype} weights loaded as {loaded.dtype} (integers where floats are expected)"
        if value.is_floating_point() and not bool(value.float().isfinite().all()):
            return f"{key}: non-finite weights loaded silently"
        if tuple(value.shape) != tuple(loaded.shape) or not bool((value.to(loaded.dtype) == loaded).all()):
            return f"{key}: loaded weights differ from the file's"
    config = json.loads((path / "config.json").read_text())
    for key, value in config.items():
        if _non_finite(value):
            return f"config {key}={str(value)[:60]} (non-finite) accepted"
    info = config.get("weights_info")
    if info is not None and not isinstance(info, dict):
        return f"weights_info={str(info)[:40]} accepted"
    labels = sorted(result.config.id2label)
    if labels != list(range(result.config.num_labels)):
        return f"id2label keys {labels} accepted for {result.config.num_labels} labels"
    return None


# model.safetensors.index.json and its shards ----------------------------------------------------------------

INDEX_ENTRIES = ["../outside.safetensors", "/dev/zero", "/etc/passwd", "pytorch_model.bin", "model.safetensors",
                 "sub/../model-00001-of-00002.safetensors", "", "missing.safetensors", ".", None, 7, ["x"]]


def mutate_index(raw: bytes, rng) -> tuple[bytes, str]:
    """index.json edits: a weight_map entry pointing elsewhere (outside, absolute, a device, a pickle, a missing
    file, not a string), the top level or weight_map of the wrong type or empty, a key dropped, a number
    overflowing to inf (1e999), or raw byte mutations."""
    kind = _pick(rng, ["entry", "entry", "top-level", "weight_map", "drop", "overflow", "bytes"])
    index = json.loads(raw)
    if kind == "bytes":
        return mutate_bytes(raw, rng)
    if kind == "overflow":
        return json_overflow(raw, rng)
    if kind == "top-level":
        value = _pick(rng, [[index], list(index["weight_map"].items()), "model.safetensors", 1, None])
        return json.dumps(value).encode(), f"index top level {type(value).__name__}"
    keys = sorted(index["weight_map"])
    if kind == "weight_map":
        index["weight_map"] = _pick(rng, [{}, [], "model-00001-of-00002.safetensors", None, {k: 1 for k in keys}])
        return json.dumps(index).encode(), f"weight_map = {str(index['weight_map'])[:40]}"
    key = str(_pick(rng, keys))
    if kind == "drop":
        del index["weight_map"][key]
        return json.dumps(index).encode(), f"weight_map without {key}"
    entry = _pick(rng, INDEX_ENTRIES)
    index["weight_map"][key] = entry
    return json.dumps(index).encode(), f"weight_map[{key}] = {entry!r}"


def _mutate_sharded(seed, out_dir, rng):
    folder = out_dir / "sharded"
    shutil.copytree(seed, folder)
    name = "model.safetensors.index.json"
    if rng.random() < 0.7:
        return folder, f"{name}: " + _write_mutation(folder / name, folder / name, rng, mutate_index)
    shard = sorted(folder.glob("model-*.safetensors"))[int(rng.integers(0, 2))]
    return folder, f"{shard.name}: " + _write_mutation(shard, shard, rng, mutate_safetensors)


# medhub convert's checkpoint reading --------------------------------------------------------------------------

def mutate_checkpoint(path: Path, out: Path, rng) -> str:
    """A torch.save checkpoint edited: a zip bomb (a deflated 64 MiB .. 1 GiB tensor in a ~1 MB file), a zip
    directory lying about a member's size, NaN/Inf or integer weights, or raw byte mutations."""
    import torch

    from .bombs import torch_checkpoint

    kind = _pick(rng, ["bomb", "bomb", "size-lie", "nan", "integer"])
    if kind == "bomb":
        numel = int(_pick(rng, [1 << 24, 1 << 26, 1 << 28]))
        torch_checkpoint(out, numel)
        return f"zip bomb: {4 * numel >> 20} MiB float32 tensor deflated"
    state = torch.load(path, weights_only=True)
    key = str(_pick(rng, sorted(k for k, v in state.items() if v.is_floating_point())))
    if kind == "nan":
        state[key].view(-1)[int(rng.integers(0, state[key].numel()))] = float(_pick(rng, [np.nan, np.inf, -np.inf]))
    elif kind == "integer":
        state[key] = state[key].to(torch.int32)
    torch.save(state, out)
    if kind == "size-lie":  # the central directory's uncompressed size of the largest member, multiplied
        data = bytearray(out.read_bytes())
        pos = data.rfind(b"PK\x01\x02")
        while pos >= 0:
            size = struct.unpack_from("<I", data, pos + 24)[0]
            struct.pack_into("<I", data, pos + 24, min(size * 1000 + 1, 2**32 - 1))
            pos = data.rfind(b"PK\x01\x02", 0, pos)
        out.write_bytes(bytes(data))
    return f"checkpoint {kind} {key}"


_mutate_checkpoint = _format_or_bytes("case.pth", mutate_checkpoint)


def _run_checkpoint(path):
    from medhub.convert import check_finite, load_checkpoint

    state = load_checkpoint(path)
    check_finite(state, path)
    return state


def _check_checkpoint(path, result):
    for key, value in result.items():
        if value.is_floating_point() and not bool(value.isfinite().all()):
            return f"{key}: non-finite weights accepted"
    return None


# preprocessor_config.json -------------------------------------------------------------------------------------

def _mutate_processor(seed, out_dir, rng):
    folder = out_dir / seed.name
    shutil.copytree(seed, folder)
    name = "preprocessor_config.json"
    return folder, f"{seed.name}: " + _write_mutation(folder / name, folder / name, rng, mutate_json)


_PROCESSOR_INPUTS: dict[str, object] = {}


def _processor_input(kind: str):
    if kind not in _PROCESSOR_INPUTS:
        from medhub.io import Volume

        rng = np.random.default_rng(0)
        if kind == "VolumeImageProcessor":
            array = rng.normal(size=(16, 16, 8)).astype(np.float32)
            _PROCESSOR_INPUTS[kind] = Volume(array, np.diag([1.5, 1.5, 3.0, 1.0]), (1.5, 1.5, 3.0), "input", None)
        else:
            _PROCESSOR_INPUTS[kind] = rng.integers(0, 256, (48, 40), dtype=np.uint8)
    return _PROCESSOR_INPUTS[kind]


def _run_processor(path):
    from medhub.auto import load_image_processor

    processor = load_image_processor(path)
    return processor, processor(_processor_input(type(processor).__name__), return_tensors="np")["pixel_values"]


def _check_processor(path, result):
    processor, processed = result
    if not _finite(processed):
        return "non-finite pixel_values"
    if getattr(processor, "do_resize", False) and processed.shape[-2:] != (processor.size["height"],
                                                                            processor.size["width"]):
        return f"pixel_values {processed.shape} but size {processor.size}"
    return None


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("dicom", "read_dicom + RadiographImageProcessor", _mutate_dicom, _run_dicom, _check_dicom),
    Target("dicom-series", "read_dicom_series + VolumeImageProcessor", _mutate_series, _run_series, _check_series),
    Target("nifti", "read_nifti + VolumeImageProcessor (resample, z-score)", _mutate_nifti, _run_nifti, _check_nifti),
    Target("image", "read_image (PNG/JPEG) + GreyscaleImageProcessor", _mutate_image, _run_image, _check_image),
    Target("medmnist", "read_medmnist (.npz)", _mutate_medmnist, _run_medmnist, _check_medmnist),
    Target("safetensors", "MedModel.from_pretrained (model.safetensors mutated)",
           _mutate_model_file("model.safetensors", mutate_safetensors), _run_model, _check_model),
    Target("config", "MedModel.from_pretrained + metadata readers (config.json, weights_info mutated)",
           _mutate_model_file("config.json", mutate_config), _run_model_and_metadata, _check_model),
    Target("preprocessor", "load_image_processor + processing (preprocessor_config.json mutated)",
           _mutate_processor, _run_processor, _check_processor),
    Target("weights-index", "MedModel.from_pretrained (sharded: index.json or a shard mutated)",
           _mutate_sharded, _run_model, _check_model),
    Target("checkpoint", "medhub convert's load_checkpoint + NaN/Inf check (.pth mutated)",
           _mutate_checkpoint, _run_checkpoint, _check_checkpoint),
]}


def _selftest(kind: str) -> Target:
    """Targets that misbehave on purpose, to show the runner records crashes, hangs and memory blow-ups."""
    def mutate(seed, out_dir, rng):
        path = out_dir / "selftest.bin"
        path.write_bytes(b"")
        return path, kind

    def run(path):
        if kind == "crash":
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif kind == "hang":
            import time

            time.sleep(3600)
        else:
            return bytearray(64 * 2**30)  # 64 GiB: refused by the worker's address-space cap
    return Target(f"selftest-{kind}", f"deliberate {kind}", mutate, run, lambda path, result: None)


SELFTEST_TARGETS = {t.name: t for t in (_selftest("crash"), _selftest("hang"), _selftest("memory"))}


def case_rng(base_seed: int, target: str, index: int):
    names = sorted(TARGETS) + sorted(SELFTEST_TARGETS)
    return np.random.default_rng([base_seed, names.index(target), index])


def run_case(target_name: str, index: int, base_seed: int, seeds: dict[str, list[Path]], work: Path) -> dict:
    """Build case `index` of `target_name` in `work` (emptied first), run it, classify the outcome."""
    from medhub.errors import MedhubError

    target = TARGETS.get(target_name) or SELFTEST_TARGETS[target_name]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rng = case_rng(base_seed, target_name, index)
    candidates = seeds.get(target_name) or [work]
    seed = candidates[int(rng.integers(0, len(candidates)))]
    try:
        path, desc = target.mutate(seed, work, rng)
    except Exception as err:  # noqa: BLE001 - a format-aware edit did not apply: fall back to a byte mutation
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        path = work / seed.name
        (shutil.copytree if seed.is_dir() else shutil.copy)(seed, path)
        victim = sorted(p for p in path.rglob("*") if p.is_file())[0] if path.is_dir() else path
        data, desc = mutate_bytes(victim.read_bytes(), rng)
        victim.write_bytes(data)
        desc = f"{victim.name}: bytes {desc} (format edit failed: {type(err).__name__})"
    record = {"target": target_name, "index": index, "seed": seed.name, "mutation": desc}
    try:
        result = target.run(path)
    except MedhubError as err:
        text = str(err)
        names = {str(path), path.name} | ({path.parent.name} if path.parent != work else set())
        named = any(n in text for n in names) or any(p.name in text for p in path.glob("*")) if path.is_dir() \
            else any(n in text for n in names)
        record.update(outcome=ERROR if named else "unnamed-error", detail=f"{type(err).__name__}: {text[:300]}")
        return record
    except RecursionError as err:
        record.update(outcome="foreign-error", detail=f"RecursionError: {str(err)[:200]}")
        return record
    except Exception as err:  # noqa: BLE001 - classifying every escape is the point
        record.update(outcome="foreign-error", detail=f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
        return record
    try:
        violation = target.check(path, result)
    except Exception as err:  # noqa: BLE001 - the checker could not even inspect the result
        violation = f"check failed: {type(err).__name__}: {err}"
    record.update(outcome="garbage" if violation else OK, detail=violation or "")
    return record


__all__ = ["FAILURES", "TARGETS", "Target", "build_seeds", "mutate_bytes", "run_case"]
