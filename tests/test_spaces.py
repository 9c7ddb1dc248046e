"""The Gradio demos end to end: `medhub demo` served on 127.0.0.1, called with gradio_client on real data.

One server per module (subprocess, free port, its own GRADIO_TEMP_DIR, an 8 MB upload limit). 3D requests use
small crops of a BraTS subject (written with their affine) so the module stays well under a minute of compute.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from spaces_server import UPLOAD_GRACE_S, DemoServer  # noqa: E402

from medhub.zoo.catalog import CHECKPOINTS  # noqa: E402

pytestmark = [pytest.mark.shared_data, pytest.mark.timeout(600)]
XRAYS = "chest-xray-samples"
DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
SUBJECT = "brats2015-examples/brats_2013_pat0003_1"
CHANNELS = ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")
BRATS_LABELS = ["background", "necrosis", "edema", "non-enhancing", "enhancing"]
FAST = "centred 64x64x40 sub-volume (fast)"


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    demo = DemoServer(shared_data, tmp_path_factory.mktemp("spaces"))
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def brats_crop(shared_data, tmp_path_factory) -> list[Path]:
    """A 40x40x24 crop of both channels around the tumour, saved with the crop's affine."""
    out = tmp_path_factory.mktemp("brats")
    paths = []
    for name in CHANNELS:
        image = nib.load(shared_data / SUBJECT / name)
        crop = image.slicer[100:140, 110:150, 60:84]
        paths.append(out / name)
        nib.save(nib.Nifti1Image(np.asarray(crop.dataobj, dtype=np.float32), crop.affine), paths[-1])
    return paths


def _confidences(label_output: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label_output["confidences"]}


def _config(server) -> str:
    with urllib.request.urlopen(server.url + "config", timeout=10) as response:
        return response.read().decode()


# -- the page ---------------------------------------------------------------------------------------------------
def test_page_has_notice_tabs_and_untrained_banners(server):
    from medhub import zoo

    config = _config(server)
    assert "Research use only - not a medical device" in config
    for entry in zoo.CHECKPOINTS:
        assert f"tab-{entry.slug}" in config
        if zoo.find(entry.id)[0] is None:  # no checkpoint in the zoo yet: the banner must say so
            assert f"{entry.slug}-untrained" in config and "UNTRAINED WEIGHTS" in config
    assert json.loads(config)["max_file_size"] == 8 * 1024 * 1024


# -- classifiers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", ["chexnet-pneumonia", "resnet18-pneumonia", "vgg16-pneumonia"])
@pytest.mark.parametrize("name", ["00000001_000.png", "16747_3_1.jpg", DICOM, "tb0005.png"])
def test_classifier_endpoint(client, shared_data, model_id, name):
    seen, labels, overlay, summary = client.predict(handle_file(shared_data / XRAYS / name), 0.5,
                                                    api_name="/" + model_id.replace("-", "_"))
    probs = _confidences(labels)
    assert set(probs) == {"normal", "pneumonia"}
    assert all(0.0 <= p <= 1.0 for p in probs.values()) and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert labels["label"] == max(probs, key=probs.get) and labels["label"] in summary
    seen, overlay = np.asarray(Image.open(seen)), np.asarray(Image.open(overlay))
    assert overlay.ndim == 3 and overlay.shape[2] == 3 and overlay.shape[:2] == seen.shape[:2]
    assert seen.std() > 10 and overlay.std() > 10  # pictures, not blank frames


def test_monochrome1_is_shown_as_the_model_sees_it(client, shared_data):
    """Fake_MONOHR1.dcm stores the same pixels as the MONOCHROME2 original but says high values are dark:
    the image the model sees (and the display) must be the original's inverse."""
    outputs = [client.predict(handle_file(shared_data / XRAYS / name), 0.4, api_name="/resnet18_pneumonia")
               for name in (DICOM, "Fake_MONOHR1.dcm")]
    normal, mono1 = (np.asarray(Image.open(o[0]), dtype=np.float64) for o in outputs)
    assert normal.shape == mono1.shape
    assert np.corrcoef(normal.ravel(), mono1.ravel())[0, 1] < -0.9


def test_twenty_concurrent_requests_are_all_answered(client, shared_data):
    names = ["00000001_000.png", "h0001.png"]
    expected = {n: _confidences(client.predict(handle_file(shared_data / XRAYS / n), 0.4,
                                               api_name="/resnet18_pneumonia")[1]) for n in names}
    jobs = [(names[i % 2], client.submit(handle_file(shared_data / XRAYS / names[i % 2]), 0.4,
                                         api_name="/resnet18_pneumonia")) for i in range(20)]
    for name, job in jobs:
        probs = _confidences(job.result(timeout=240)[1])
        assert probs == pytest.approx(expected[name], abs=1e-5)


# -- 2D segmentation --------------------------------------------------------------------------------------------
def test_unet_endpoint_mask_areas_and_dice(client, shared_data):
    image = shared_data / "isbi2012-em/train/image/0.png"
    truth = shared_data / "isbi2012-em/train/label/0.png"
    overlay, areas, mask, summary, cells = client.predict(handle_file(image), handle_file(truth), 0.4,
                                                          api_name="/unet_isbi2012")
    mask = np.asarray(Image.open(mask))
    assert mask.shape == (512, 512) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert np.asarray(Image.open(overlay)).shape == (512, 512, 3)
    rows = {row[0]: row for row in areas["data"]}
    assert set(rows) == {"membrane", "cell"}
    assert sum(int(r[1]) for r in rows.values()) == 512 * 512
    assert int(rows["cell"][1]) == int((mask == 1).sum())
    assert sum(float(r[2]) for r in rows.values()) == pytest.approx(100.0, abs=0.05)
    assert "Dice vs ground truth" in summary and summary.count("**") >= 4
    # the zoo U-Net names its cell-instance post-processing: the cells' picture and their count
    assert np.asarray(Image.open(cells)).shape == (512, 512, 3)
    count = int(re.search(r"Cells: \*\*(\d+)\*\*", summary).group(1))
    assert 100 < count < 1000  # ISBI 2012 slice 0 shows a few hundred neurite sections
    without_truth = client.predict(handle_file(image), None, 0.4, api_name="/unet_isbi2012")
    assert "Dice" not in without_truth[3]


# -- 3D segmentation --------------------------------------------------------------------------------------------
def _check_volume_outputs(result, shape, affine):
    summary, axial, coronal, sagittal, z, y, x, volumes, mask_path = result
    mask = nib.load(mask_path)
    assert mask.shape == shape and np.allclose(mask.affine, affine, atol=1e-4)
    labels = np.asarray(mask.dataobj)
    assert labels.dtype == np.uint8 and labels.max() < len(BRATS_LABELS)
    rows = {row[0]: row for row in volumes["data"]}
    assert list(rows) == BRATS_LABELS
    assert sum(int(r[1]) for r in rows.values()) == int(np.prod(shape))
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    for k, name in enumerate(BRATS_LABELS):
        assert int(rows[name][1]) == int((labels == k).sum())
        assert float(rows[name][2]) == pytest.approx((labels == k).sum() * voxel_ml, abs=1e-3)
    for picture in (axial, coronal, sagittal):
        assert np.asarray(Image.open(picture)).ndim == 3
    assert (z["maximum"], y["maximum"], x["maximum"]) == (shape[2] - 1, shape[1] - 1, shape[0] - 1)
    return labels


@pytest.mark.parametrize("model_id", ["attention-unet-brats", "deepmedic-brats"])
def test_volume_endpoint_nifti(client, brats_crop, model_id):
    result = client.predict(*(handle_file(p) for p in brats_crop), FAST, 0.4, "mask",
                            api_name="/" + model_id.replace("-", "_"))
    reference = nib.load(brats_crop[0])
    _check_volume_outputs(result, reference.shape, reference.affine)
    assert "only the centred 64x64x40 sub-volume" in result[0]


def test_volume_region_limits_the_prediction(client, shared_data):
    """A whole BraTS subject on the fast setting: only the centred 64x64x40 box can hold labels."""
    paths = [shared_data / SUBJECT / name for name in CHANNELS]
    result = client.predict(*(handle_file(p) for p in paths), FAST, 0.4, "attention",
                            api_name="/attention_unet_brats")
    reference = nib.load(paths[0])
    labels = _check_volume_outputs(result, reference.shape, reference.affine)
    outside = labels.copy()
    outside[88:152, 88:152, 57:97] = 0
    assert not outside.any()


def test_volume_endpoint_dicom_series_zip(client, brats_crop, tmp_path):
    from dicom_factory import write_dicom
    from pydicom.uid import generate_uid

    from medhub.io import read_dicom_series

    zips = []
    for path in brats_crop:
        array = np.asarray(nib.load(path).dataobj)
        folder, uid = tmp_path / path.name.split("_")[0], generate_uid()
        folder.mkdir()
        for k in range(array.shape[2]):
            write_dicom(folder / f"{k:03d}.dcm", np.rint(array[:, :, k].T * 100).astype(np.int16), series_uid=uid,
                        position=(0.0, 0.0, float(k)), pixel_spacing=(1.0, 1.0), instance=k + 1)
        zips.append(tmp_path / f"{folder.name}.zip")
        with zipfile.ZipFile(zips[-1], "w") as archive:
            for file in sorted(folder.iterdir()):
                archive.write(file, f"series/{file.name}")
    series = read_dicom_series(tmp_path / "Flair")
    result = client.predict(*(handle_file(p) for p in zips), FAST, 0.4, "mask", api_name="/attention_unet_brats")
    _check_volume_outputs(result, series.shape, series.affine)


# -- bad inputs -------------------------------------------------------------------------------------------------
def _bad_inputs(tmp_path: Path, shared_data: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n" * 20)
    corrupt_dicom = tmp_path / "corrupt.dcm"
    corrupt_dicom.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 40)
    huge = tmp_path / "huge.png"
    Image.new("L", (10000, 10000)).save(huge, optimize=True)
    corrupt_nifti = tmp_path / "corrupt.nii.gz"
    corrupt_nifti.write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 50)
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 32), np.float32), np.eye(4)), flat)
    return {"text": text, "corrupt_dicom": corrupt_dicom, "huge": huge, "corrupt_nifti": corrupt_nifti,
            "flat": flat}


@pytest.mark.parametrize("case, expected", [("text", "not a medical image"), ("corrupt_dicom", "corrupt DICOM"),
                                            ("huge", "10000x10000 pixels is larger"), ("volume", "dimensions")])
def test_classifier_bad_input_is_a_message(client, server, shared_data, tmp_path, brats_crop, case, expected):
    path = brats_crop[0] if case == "volume" else _bad_inputs(tmp_path, shared_data)[case]
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(path), 0.4, api_name="/chexnet_pneumonia")
    assert server.alive()


@pytest.mark.parametrize("case, expected", [("corrupt_nifti", "corrupt NIfTI"), ("flat", "has 2 dimensions"),
                                            ("png", "has 2 dimensions"), ("text", "not a medical image")])
def test_volume_bad_input_is_a_message(client, server, shared_data, tmp_path, brats_crop, case, expected):
    path = shared_data / "isbi2012-em/train/image/0.png" if case == "png" else _bad_inputs(tmp_path, shared_data)[case]
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(path), handle_file(brats_crop[1]), FAST, 0.4, "mask",
                       api_name="/deepmedic_brats")
    assert server.alive()


def test_missing_channel_and_ground_truth_mismatch_are_messages(client, shared_data, brats_crop):
    with pytest.raises(Exception, match="upload one file per channel"):
        client.predict(handle_file(brats_crop[0]), None, FAST, 0.4, "mask", api_name="/attention_unet_brats")
    with pytest.raises(Exception, match="ground truth .* does not match"):
        client.predict(handle_file(shared_data / "isbi2012-em/train/image/0.png"),
                       handle_file(shared_data / XRAYS / "16747_3_1.jpg"), 0.4, api_name="/unet_isbi2012")


def test_upload_above_the_limit_is_refused(client, server, tmp_path, shared_data):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(9 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)file size|too large|413|exceed"):
        client.predict(handle_file(big), 0.4, api_name="/resnet18_pneumonia")
    assert server.alive()
    probs = _confidences(client.predict(handle_file(shared_data / XRAYS / "h0001.png"), 0.4,
                                        api_name="/resnet18_pneumonia")[1])
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)  # and it keeps serving


def test_no_upload_is_kept_after_the_request(client, server, shared_data, brats_crop, tmp_path):
    """Uploads are deleted (a moment) after their request; only gradio's copies of the offered examples stay."""
    image = tmp_path / "patient_upload.png"
    Image.open(shared_data / XRAYS / "16747_3_1.jpg").convert("L").save(image)
    truth = tmp_path / "truth_upload.png"
    Image.open(shared_data / "isbi2012-em/train/label/1.png").save(truth)
    client.predict(handle_file(image), 0.4, api_name="/vgg16_pneumonia")
    client.predict(handle_file(shared_data / "isbi2012-em/train/image/1.png"), handle_file(truth), 0.4,
                   api_name="/unet_isbi2012")
    client.predict(*(handle_file(p) for p in brats_crop), FAST, 0.4, "mask", api_name="/attention_unet_brats")
    time.sleep(UPLOAD_GRACE_S + 2.5)
    uploaded = {image.name, truth.name, "1.png", *CHANNELS, "notes.txt", "huge.png", "big.png", "corrupt.dcm",
                "corrupt.nii.gz", "flat.nii.gz"}
    kept = [p for p in server.temp_dir.rglob("*") if p.is_file() and p.name in uploaded]
    examples = {(p.name, p.stat().st_size) for p in shared_data.rglob("*") if p.is_file()}
    kept = [p for p in kept if (p.name, p.stat().st_size) not in examples or p.name == "1.png"]
    assert not kept, f"uploads left in gradio's temp dir: {kept}"


# -- the Space folders ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", [c.id for c in CHECKPOINTS])
def test_space_folder_is_complete_and_current(model_id):
    """The committed text files of spaces/<id>/ are what `medhub spaces build` writes (its wheel and examples are
    build products, not in git: tests/test_space_repos.py builds, pushes, installs and runs two Spaces)."""
    from huggingface_hub import SpaceCard

    from medhub.spaces.repo import space_texts, wheel_name
    from medhub.zoo import checkpoint

    folder = Path(__file__).resolve().parents[1] / "spaces" / model_id
    for name, text in space_texts(checkpoint(model_id)).items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{folder / name} is stale: medhub spaces build"
    header = SpaceCard.load(folder / "README.md").data
    assert header.sdk == "gradio" and header.app_file == "app.py" and header.models == [f"medhub/{model_id}"]
    assert header.sdk_version == gradio.__version__ and header.python_version == "3.11"
    assert header.license == checkpoint(model_id).license and header.get("suggested_hardware")
    assert len(header.get("short_description")) <= 60  # the Hub's limit
    assert f"./{wheel_name()}" in (folder / "requirements.txt").read_text().splitlines()
    assert f'space_demo("{model_id}", __file__, default_org="medhub")' in (folder / "app.py").read_text()


def test_gpu_wrapper_uses_spaces_when_importable(monkeypatch):
    import sys
    import types

    from medhub.spaces.loading import gpu

    def fn():
        return 1

    assert gpu(fn) is fn  # no `spaces` package (the repo's spaces/ folder is not one)
    fake = types.ModuleType("spaces")
    fake.GPU = lambda f: ("wrapped", f)
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu(fn) == ("wrapped", fn)


def test_la_png_is_read_and_errors_never_show_the_servers_upload_path(client, server, shared_data, tmp_path):
    """Issue 15 §6: a greyscale+alpha (LA) PNG is read like any PNG (alpha dropped), and a refused upload's message
    names the file as the user gave it, never the server's upload folder."""
    la = tmp_path / "xray_la.png"
    Image.open(shared_data / XRAYS / "00000001_000.png").convert("LA").resize((256, 256)).save(la)
    labels = client.predict(handle_file(la), 0.5, api_name="/chexnet_pneumonia")[1]
    assert set(_confidences(labels)) == {"normal", "pneumonia"}
    assert client.predict(handle_file(la), None, 0.4, api_name="/unet_isbi2012")
    bad = _bad_inputs(tmp_path, shared_data)["text"]
    with pytest.raises(Exception, match="notes.txt") as refused:
        client.predict(handle_file(bad), 0.4, api_name="/chexnet_pneumonia")
    assert "/tmp" not in str(refused.value) and "gradio" not in str(refused.value).lower()
    assert server.alive()
