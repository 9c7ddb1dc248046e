"""Small files that decompress (or declare) gigabytes are refused before anything is inflated (issue 15, part 2).

The bombs are built in tmp_path by `tools.reliability.bombs` (a 2 MB deflated DICOM inflating to 2 GiB, a
1 MB `.nii.gz` with a 1 GiB header extension, a 1 MB `.pth` holding a 1 GiB tensor). Where a reader could
inflate them, it runs in a fresh subprocess that reports its peak RSS growth (`ru_maxrss` after the imports vs
after the call): the refusal must come with the file's name and the limit, and without the memory.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from medhub.errors import InputError
from medhub.io import declared_size, limits, read_dicom, read_nifti
from medhub.io.dicom import read_dicom_header
from tools.reliability.bombs import deflated_dicom, gzip_zeros, nifti_bytes, torch_checkpoint

DICOM_NAME = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
GiB = 1 << 30
MAX_GROWTH_MB = 150  # what a refused bomb may add to the peak RSS (imports excluded)

RSS_CLIENT = r"""
import json, resource, sys
import torch, medhub.io, medhub.convert  # imported first: their memory is not the case's
from medhub.errors import MedhubError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    exec(sys.argv[1])
    out = {"ok": True}
except MedhubError as err:
    out = {"error": type(err).__name__, "message": str(err)}
out["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(out))
"""


def in_subprocess(code: str) -> dict:
    run = subprocess.run([sys.executable, "-c", RSS_CLIENT, code], capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"client died (status {run.returncode}): {run.stderr[-2000:]}"
    return json.loads(lines[-1])


def real_dicom(shared_data: Path) -> pydicom.Dataset:
    return pydicom.dcmread(shared_data / "chest-xray-samples" / DICOM_NAME)


@pytest.fixture
def small_limits(monkeypatch):
    """1 MiB of decoded data, 64 KiB of header: the checks run on small files, quickly."""
    monkeypatch.setattr(limits, "MAX_DECODED_BYTES", 1 << 20)
    monkeypatch.setattr(limits, "MAX_HEADER_BYTES", 64 << 10)


# -- DICOM -------------------------------------------------------------------------------------------------


def test_deflated_dicom_bomb_is_refused_before_inflating(shared_data, tmp_path):
    """The issue's case: a ~2 MB deflated-transfer-syntax DICOM whose data set inflates to 2 GiB (its header
    declares a 10 x 10 image: only the inflated size gives it away)."""
    ds = real_dicom(shared_data)
    ds.Rows = ds.Columns = 10
    bomb = deflated_dicom(ds, 2 * GiB, tmp_path / "bomb.dcm")
    assert bomb.stat().st_size < 3 << 20
    out = in_subprocess(f"medhub.io.read_dicom({str(bomb)!r})")
    assert out.get("error") == "InputError", out
    assert str(bomb) in out["message"] and "inflates to more than 1.02 GiB" in out["message"]
    assert "MEDHUB_MAX_DECODED_BYTES" in out["message"]
    assert out["grew_mb"] < MAX_GROWTH_MB, out


def test_every_dicom_header_reader_bounds_inflation(shared_data, tmp_path, small_limits):
    from datasets import Dataset

    from medhub.data.sharing import find_identifying_data
    from medhub.io.deidentify import deidentify

    bomb = deflated_dicom(real_dicom(shared_data), 8 << 20, tmp_path / "bomb.dcm")  # 8 MiB > 1 MiB + 64 KiB
    with open(bomb, "rb") as fh:
        data = fh.read()
    for read in (lambda: read_dicom(bomb), lambda: read_dicom_header(bomb), lambda: declared_size(bomb),
                 lambda: read_dicom_header(io.BytesIO(data), "upload.dcm"), lambda: deidentify(bomb),
                 lambda: find_identifying_data(Dataset.from_dict({"f": [str(bomb)]}))):
        with pytest.raises(InputError, match="inflates to more than 1.06 MiB"):
            read()


def test_deflated_dicom_within_the_limits_reads_as_before(shared_data, tmp_path):
    ds = real_dicom(shared_data)
    pixels = ds.pixel_array
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod"):
        del ds[keyword]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    assert (tmp_path / "deflated.dcm").stat().st_size < pixels.nbytes  # it is deflated
    image = read_dicom(tmp_path / "deflated.dcm")
    assert np.array_equal(image.pixels, pixels.astype(np.float32))
    assert declared_size(tmp_path / "deflated.dcm") == ((1024, 1024), 1024 * 1024, True)


def test_compressed_pixels_declaring_gigabytes_are_refused_before_decoding(shared_data, tmp_path):
    ds = real_dicom(shared_data)  # JPEG baseline: the codec would allocate what the header declares
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 4
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(InputError, match=r"huge.dcm: the pixel data .* declares 17,179,344,900 bytes \(16 GiB\)"):
        read_dicom(tmp_path / "huge.dcm")
    assert declared_size(tmp_path / "huge.dcm").nbytes == 17_179_344_900


def write_series(folder: Path, ds: pydicom.Dataset, slices: int, size: int = 512) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ds = ds.copy()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod"):
        del ds[keyword]
    ds.Rows = ds.Columns = size
    ds.PixelData = bytes(size * size)
    ds.ImageOrientationPatient, ds.PixelSpacing = [1, 0, 0, 0, 1, 0], [1, 1]
    files = []
    for k in range(slices):
        ds.ImagePositionPatient, ds.InstanceNumber = [0, 0, float(k)], k + 1
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{k + 1}"
        files.append(folder / f"slice{k:03d}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return files


def test_a_zipped_series_declares_its_voxels_without_being_extracted(shared_data, tmp_path):
    """The issue's case: a ~400 KB zip of a DICOM series that decodes to 105 M voxels; `declared_size` gives
    the Space the number to compare with its own cap, from the headers."""
    files = write_series(tmp_path / "series", real_dicom(shared_data), 400)
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for f in files:
            zf.write(f, f"series/{f.name}")
    assert archive.stat().st_size < 500_000
    assert declared_size(archive) == ((400,), 400 * 512 * 512, True)
    assert declared_size(tmp_path / "series") == ((512, 512, 400), 400 * 512 * 512, False)


def test_series_and_zip_totals_are_bounded(shared_data, tmp_path, small_limits):
    files = write_series(tmp_path / "series", real_dicom(shared_data), 20, size=256)  # 64 KiB each, 1.25 MiB
    from medhub.io import read_dicom_series

    with pytest.raises(InputError, match="series: the series' slices together declares 1,310,720 bytes"):
        read_dicom_series(tmp_path / "series")
    with pytest.raises(InputError, match="the series' slices together"):
        declared_size(tmp_path / "series")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
        zf.writestr("big.bin", bytes(2 << 20))  # its directory entry alone is over the limit
    with pytest.raises(InputError, match=r"series.zip!slice0\d\d.dcm|series.zip: the zip archive's members"):
        declared_size(archive)


# -- NIfTI -------------------------------------------------------------------------------------------------


def test_nifti_gz_with_a_1_gib_header_extension_is_refused_unread(tmp_path):
    """The issue's case: a small .nii.gz whose header extension is 1 GiB (nibabel reads extensions whole)."""
    extension = GiB
    header = nifti_bytes((8, 8, 4), extensions=(extension,))
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip_zeros(header, extension - 8 + 8 * 8 * 4 * 4))
    assert bomb.stat().st_size < 5 << 20
    out = in_subprocess(f"medhub.io.read_nifti({str(bomb)!r})")
    assert out.get("error") == "InputError", out
    assert str(bomb) in out["message"] and "extensions declare 1,073,742,208 bytes (vox_offset)" in out["message"]
    assert "MEDHUB_MAX_HEADER_BYTES" in out["message"] and out["grew_mb"] < MAX_GROWTH_MB, out


def test_nifti_extension_sizes_must_fit_before_the_data(tmp_path):
    """vox_offset small, but an extension declaring 1 GiB (or less than 16 bytes: nibabel would read to the
    end of the stream) is refused: nibabel reads each extension by its own size."""
    for esize in (GiB, 0, 8):
        header = nifti_bytes((8, 8, 4), vox_offset=368, extensions=(esize,))
        path = tmp_path / f"esize{esize}.nii.gz"
        path.write_bytes(gzip_zeros(header, 8 + 8 * 8 * 4 * 4))
        message = f"esize{esize}.nii.gz: header extension at byte 352 declares {esize} bytes"
        with pytest.raises(InputError, match=message):
            read_nifti(path)


def test_nifti_declaring_gigabytes_of_data_is_refused_unread(tmp_path):
    bomb = tmp_path / "shape.nii.gz"
    bomb.write_bytes(gzip_zeros(nifti_bytes((2048, 2048, 128)), 4 << 20))  # declares 2 GiB of float32
    with pytest.raises(InputError, match=r"shape.nii.gz: the NIfTI header \(shape x datatype\) declares "
                                         r"2,147,483,648 bytes \(2 GiB\).*MEDHUB_MAX_DECODED_BYTES"):
        read_nifti(bomb)
    assert bomb.stat().st_size < 100_000


def test_complex_nifti_is_refused_not_cast_to_real(tmp_path):
    import nibabel as nib

    data = (np.arange(24, dtype=np.float32) + 1j * np.ones(24, dtype=np.float32)).reshape(2, 3, 4).astype(np.complex64)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "complex.nii.gz")
    with pytest.raises(InputError, match=r"complex.nii.gz: complex voxel data \(complex64, datatype 32\)"):
        read_nifti(tmp_path / "complex.nii.gz")


def test_declared_size_of_real_files(shared_data):
    xr = shared_data / "chest-xray-samples"
    assert declared_size(xr / DICOM_NAME) == ((1024, 1024), 1024 * 1024, True)
    assert declared_size(xr / "tb0005.png") == ((512, 512, 3), 512 * 512 * 3, True)
    flair = next((shared_data / "brats2015-examples").glob("*/Flair_subtrMeanDivStd.nii.gz"))
    assert declared_size(flair) == ((240, 240, 155), 240 * 240 * 155 * 4, True)
    assert read_nifti(flair).array.shape == (240, 240, 155)  # the header parse agrees with nibabel


# -- medhub convert ----------------------------------------------------------------------------------------


def test_pth_zip_bomb_is_refused_before_torch_load(tmp_path):
    """The issue's case: a ~1 MB .pth (torch.save zip format) holding a 1 GiB float32 tensor, deflated."""
    bomb = torch_checkpoint(tmp_path / "resnet18.pth", GiB // 4)
    assert bomb.stat().st_size < 2 << 20
    out = in_subprocess(f"medhub.convert.convert_checkpoint({str(bomb)!r}, {str(tmp_path / 'out')!r}, 'resnet18')")
    assert out.get("error") == "InputError", out
    assert str(bomb) in out["message"] and "refused as a zip bomb" in out["message"]
    assert "MEDHUB_MAX_COMPRESSION_RATIO" in out["message"] and out["grew_mb"] < MAX_GROWTH_MB, out
    assert not (tmp_path / "out").exists()


def test_checkpoint_over_the_size_limit_is_refused_from_its_zip_directory(tmp_path, monkeypatch):
    import medhub.convert as convert

    monkeypatch.setattr(convert, "MAX_CHECKPOINT_BYTES", 1 << 20)
    stored = torch_checkpoint(tmp_path / "big.pth", 1 << 19, deflate=False)  # 2 MiB stored, ratio 1
    with pytest.raises(InputError, match=r"big.pth: the checkpoint's members declare 2,097,\d+ bytes .*"
                                         r"MEDHUB_MAX_CHECKPOINT_BYTES"):
        convert.convert_checkpoint(stored, tmp_path / "out", "resnet18")


def test_a_zip_end_record_zipfile_cannot_even_check_is_an_input_error(tmp_path):
    """A bit flip the checkpoint fuzzer found: a zip64 locator claiming two disks makes zipfile.is_zipfile raise."""
    import medhub.convert as convert

    good = torch_checkpoint(tmp_path / "ok.pth", 16, deflate=False).read_bytes()
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 2)
    for name in ("multidisk.pth", "multidisk.zip"):
        (tmp_path / name).write_bytes(good[:-22] + locator + good[-22:])
    with pytest.raises(InputError, match="multidisk.pth: not a readable checkpoint archive"):
        convert.convert_checkpoint(tmp_path / "multidisk.pth", tmp_path / "out", "resnet18")
    with pytest.raises(InputError, match="multidisk.zip: not a readable zip archive"):
        declared_size(tmp_path / "multidisk.zip")
