"""medhub.io on the real files of ../shared/data and on small DICOM series written here with pydicom."""

from __future__ import annotations

import random

import nibabel as nib
import numpy as np
import pytest
from dicom_factory import write_dicom
from PIL import Image
from pydicom.uid import JPEGLosslessSV1, generate_uid

from medhub.errors import InputError
from medhub.io import (
    DicomImage,
    RasterImage,
    Volume,
    read_any,
    read_dicom,
    read_dicom_series,
    read_image,
    read_medmnist,
    read_nifti,
    save_nifti,
    sniff,
    to_canonical,
)

DICOM_NAME = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


# -- real radiographs ---------------------------------------------------------------------------------------


def test_real_dicom_radiograph(shared_data):
    image = read_any(shared_data / "chest-xray-samples" / DICOM_NAME)
    assert isinstance(image, DicomImage)
    assert image.pixels.shape == (1024, 1024) and image.pixels.dtype == np.float32
    assert image.photometric_interpretation == "MONOCHROME2" and not image.is_monochrome1
    assert image.pixel_spacing == (0.168, 0.168)
    assert image.dataset.file_meta.TransferSyntaxUID.name == "JPEG Baseline (Process 1)"
    assert (image.pixels.min(), image.pixels.max()) == (0.0, 254.0)
    assert image.pixels.mean() == pytest.approx(160.398, abs=1e-3)


def test_monochrome1_variant_has_same_pixels_and_the_inverting_flag(shared_data):
    mono2 = read_dicom(shared_data / "chest-xray-samples" / DICOM_NAME)
    mono1 = read_dicom(shared_data / "chest-xray-samples" / "Fake_MONOHR1.dcm")
    assert mono1.is_monochrome1 and mono1.photometric_interpretation == "MONOCHROME1"
    np.testing.assert_array_equal(mono1.pixels, mono2.pixels)  # the display inversion is the processor's job


@pytest.mark.parametrize("name, shape, mode", [
    ("00000001_000.png", (512, 512), "L"),
    ("16747_3_1.jpg", (885, 1036, 3), "RGB"),
    ("tb0005.png", (512, 512, 3), "RGB"),
])
def test_real_png_and_jpeg(shared_data, name, shape, mode):
    image = read_any(shared_data / "chest-xray-samples" / name)
    assert isinstance(image, RasterImage)
    assert image.pixels.shape == shape and image.pixels.dtype == np.uint8
    assert image.mode == mode and image.bit_depth == 8 and image.max_value == 255
    assert sniff(shared_data / "chest-xray-samples" / name) == ("jpeg" if name.endswith("jpg") else "png")


def test_16_bit_png_keeps_its_depth(tmp_path):
    pixels = (np.arange(64 * 32, dtype=np.uint16).reshape(64, 32) * 31).astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    assert image.bit_depth == 16 and image.pixels.dtype == np.uint16 and image.max_value == 65535
    np.testing.assert_array_equal(image.pixels, pixels)


# -- NIfTI ----------------------------------------------------------------------------------------------------


def test_brats_nifti(shared_data, tmp_path):
    folder = shared_data / "brats2015-examples" / "brats_2013_pat0003_1"
    flair = read_any(folder / "Flair_subtrMeanDivStd.nii.gz")
    assert isinstance(flair, Volume)
    assert flair.shape == (240, 240, 155) and flair.array.dtype == np.float32
    assert flair.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(flair.affine, [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]])
    assert flair.axcodes == ("L", "P", "S")

    canonical = to_canonical(flair)
    assert canonical.axcodes == ("R", "A", "S")
    # a flip of the first two axes: the same voxel, the same world position
    np.testing.assert_array_equal(canonical.array, flair.array[::-1, ::-1, :])
    ijk = np.array([10, 20, 30, 1])
    np.testing.assert_allclose(canonical.affine @ [229, 219, 30, 1], flair.affine @ ijk)

    labels = read_nifti(folder / "OTMultiClass.nii.gz")
    assert set(np.unique(labels.array).tolist()) <= {0, 1, 2, 3, 4}
    out = save_nifti(labels.array.astype(np.uint8), labels.affine, tmp_path / "labels.nii.gz")
    again = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(again.dataobj), labels.array.astype(np.uint8))
    np.testing.assert_allclose(again.affine, labels.affine)


# -- MedMNIST -------------------------------------------------------------------------------------------------


def test_pneumoniamnist_splits(shared_data):
    path = shared_data / "pneumoniamnist" / "pneumoniamnist_trainval.npz"
    train_x, train_y = read_medmnist(path, "train")
    val_x, val_y = read_medmnist(path, "val")
    assert train_x.shape == (3882, 28, 28) and train_y.shape == (3882, 1)
    assert val_x.shape == (524, 28, 28) and val_y.shape == (524, 1)
    assert train_x.dtype == np.uint8 and set(np.unique(train_y).tolist()) == {0, 1}
    assert train_y.mean() == pytest.approx(0.9, abs=0.01)  # the README: 90 % pneumonia in this subset
    with pytest.raises(InputError, match="test_images"):
        read_medmnist(path, "test")  # the official test split is not in this file


# -- synthetic DICOM series -------------------------------------------------------------------------------


def _series(folder, n=5, orientation=(1, 0, 0, 0, 1, 0), origin=(-20.0, 30.0, 10.0), step=2.5, skip=()):
    """n slices with pixel value 100*k + column, written under shuffled names; returns the slice normal."""
    folder.mkdir()
    iop = np.asarray(orientation, dtype=float).reshape(2, 3)
    normal = np.cross(iop[0], iop[1])
    uid = generate_uid()
    order = list(range(n))
    random.Random(0).shuffle(order)
    for name_index, k in enumerate(order):
        if k in skip:
            continue
        pixels = (100 * k + np.tile(np.arange(4, dtype=np.uint16), (3, 1))).astype(np.uint16)
        position = np.asarray(origin) + k * step * normal
        write_dicom(folder / f"IM{name_index:03d}", pixels, series_uid=uid, position=tuple(position),
                    orientation=orientation, pixel_spacing=(0.8, 0.7), instance=n - k, slope=2.0, intercept=-1000.0)
    return normal


def test_series_sorted_by_position_with_spacing_and_ras_affine(tmp_path):
    _series(tmp_path / "ct")
    volume = read_any(tmp_path / "ct")
    assert isinstance(volume, Volume) and volume.shape == (4, 3, 5)  # (X = columns, Y = rows, Z = slices)
    assert volume.spacing == pytest.approx((0.7, 0.8, 2.5))
    # slices in position order, HU = 2 * stored - 1000, column index along X
    np.testing.assert_allclose(volume.array[:, 0, :], 2.0 * (100 * np.arange(5)[None] + np.arange(4)[:, None]) - 1000)
    np.testing.assert_allclose(volume.affine, [[-0.7, 0, 0, 20], [0, -0.8, 0, -30], [0, 0, 2.5, 10], [0, 0, 0, 1]])
    assert volume.axcodes == ("L", "P", "S")


def test_oblique_series_affine_maps_voxels_to_image_positions(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    orientation = (1, 0, 0, 0, c, s)  # tilted about x
    normal = _series(tmp_path / "oblique", orientation=orientation, step=3.0)
    volume = read_dicom_series(sorted((tmp_path / "oblique").iterdir()))
    for k in range(5):
        lps = np.array([-20.0, 30.0, 10.0]) + 3.0 * k * normal
        np.testing.assert_allclose(volume.affine @ [0, 0, k, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-6)
    # one step along rows (Y) moves 0.8 mm along the column direction, in RAS
    np.testing.assert_allclose(volume.affine[:3, 1], 0.8 * np.array([0, -c, s]), atol=1e-9)


def test_series_with_a_missing_or_duplicate_slice_is_refused(tmp_path):
    _series(tmp_path / "gap", skip=(2,))
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_dicom_series(tmp_path / "gap")
    _series(tmp_path / "dup", step=0.0)
    with pytest.raises(InputError, match="duplicate slice"):
        read_dicom_series(tmp_path / "dup")


def test_series_mixing_shapes_is_refused(tmp_path):
    _series(tmp_path / "mixed", n=3)
    first = read_dicom(sorted((tmp_path / "mixed").iterdir())[0]).dataset
    write_dicom(tmp_path / "mixed" / "odd", np.zeros((5, 5), np.uint16), series_uid=first.SeriesInstanceUID,
                position=(-20.0, 30.0, 50.0))
    with pytest.raises(InputError, match="slice size"):
        read_dicom_series(tmp_path / "mixed")


# -- single DICOM files: frames, errors ----------------------------------------------------------------------


def test_multiframe_and_rescale(tmp_path):
    frames = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 5
    image = read_dicom(write_dicom(tmp_path / "mf.dcm", frames, slope=0.5, intercept=10.0))
    assert image.number_of_frames == 2 and image.pixels.shape == (2, 3, 4)
    np.testing.assert_allclose(image.pixels, frames * 0.5 + 10.0)


def test_dicom_errors_name_the_file(tmp_path, shared_data):
    no_pixels = write_dicom(tmp_path / "nopix.dcm", None)
    with pytest.raises(InputError, match="nopix.dcm: the DICOM file has no pixel data"):
        read_dicom(no_pixels)

    raw = (shared_data / "chest-xray-samples" / DICOM_NAME).read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated.dcm: truncated"):
        read_any(tmp_path / "truncated.dcm")

    (tmp_path / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="corrupt.dcm"):
        read_any(tmp_path / "corrupt.dcm")

    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="notes.txt: unsupported"):
        read_any(tmp_path / "notes.txt")


def test_missing_codec_names_transfer_syntax_and_package(tmp_path, shared_data):
    import pydicom

    ds = pydicom.dcmread(shared_data / "chest-xray-samples" / DICOM_NAME)
    # JPEG-LS is decodable since highdicom brought pyjpegls; nothing installed decodes lossless JPEG (Process 14)
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1  # the JPEG baseline bytes stay
    ds.save_as(tmp_path / "jpeg-lossless.dcm")
    with pytest.raises(InputError, match=r"JPEG Lossless.*1\.2\.840\.10008\.1\.2\.4\.70.*pylibjpeg-libjpeg"):
        read_dicom(tmp_path / "jpeg-lossless.dcm")


def test_non_finite_float_pixels_are_refused(tmp_path):
    import pydicom

    path = write_dicom(tmp_path / "float.dcm", np.zeros((2, 2), np.uint16))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    del ds.PixelRepresentation
    ds.FloatPixelData = np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32).tobytes()
    ds.save_as(path)
    with pytest.raises(InputError, match="float.dcm: 1 non-finite"):
        read_dicom(path)


def test_voi_lut_with_empty_lut_data_is_an_input_error_naming_the_file(tmp_path, shared_data):
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from medhub.processing import RadiographImageProcessor

    ds = pydicom.dcmread(shared_data / "chest-xray-samples" / DICOM_NAME)
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]
    lut.add_new(0x00283006, "US", [])  # LUTData: empty
    ds.VOILUTSequence = Sequence([lut])
    ds.save_as(tmp_path / "empty_lut.dcm")
    for read in (lambda: read_dicom(tmp_path / "empty_lut.dcm"),
                 lambda: RadiographImageProcessor(size=32)(read_any(tmp_path / "empty_lut.dcm"))):
        with pytest.raises(InputError, match=r"empty_lut.dcm: VOILUTSequence\[0\]: LUTData holds 0 entries but "
                                             r"LUTDescriptor declares 256"):
            read()
    lut.LUTData = list(range(256))  # a complete table reads and applies
    ds.save_as(tmp_path / "lut.dcm")
    assert RadiographImageProcessor(size=32)(read_dicom(tmp_path / "lut.dcm"))["pixel_values"].shape == (1, 1, 32, 32)
