"""The demo in a real browser: headless Debian Chromium (the system binary, never a downloaded browser), driven by
Playwright, opens `medhub demo`, uploads a radiograph and a BraTS crop, and checks the results are rendered.

Screenshots of every tab go to out/test_spaces_browser/ (ignored by git) and the test's tmp_path.
Skips with the reason when Chromium or the playwright package is missing (`.ci/run` installs Debian chromium).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from spaces_server import REPO_ROOT, DemoServer

pytestmark = [pytest.mark.shared_data, pytest.mark.timeout(600)]
CHROMIUM = os.environ.get("MEDHUB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = REPO_ROOT / "out" / "test_spaces_browser"


@pytest.fixture(scope="module")
def page(shared_data, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no Chromium binary (install Debian `chromium`; .ci/run does): the browser test needs one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    server = DemoServer(shared_data, tmp_path_factory.mktemp("browser"))
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            elsewhere: list[str] = []  # the demo is offline: every request must go to the local server
            page.on("request", lambda r: r.url.startswith((server.url, "data:", "blob:")) or elsewhere.append(r.url))
            page.goto(server.url, wait_until="domcontentloaded")
            page.get_by_text("Research use only").first.wait_for(timeout=60_000)
            yield page
            browser.close()
            assert not elsewhere, f"the page requested non-local URLs: {elsewhere[:5]}"
    finally:
        server.stop()


def _shot(page, name: str, tmp_path: Path) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shutil.copy(path, tmp_path / path.name)
    return path


def _wait_uploaded(page, elem_id: str) -> None:
    """The File component shows its preview table (a long name is shortened with an ellipsis) once uploaded."""
    page.locator(f"#{elem_id} table").first.wait_for(timeout=60_000)
    page.locator(f"#{elem_id} a[href*='file=']").first.wait_for(state="attached", timeout=60_000)


def _open_tab(page, slug: str) -> None:
    page.get_by_role("tab").filter(has_text=_TITLES[slug]).filter(
        has_not_text="Attention" if slug == "unet_isbi2012" else "\0").first.click()


_TITLES = {"chexnet_pneumonia": "CheXNet", "resnet18_pneumonia": "ResNet-18", "vgg16_pneumonia": "VGG-16",
           "unet_isbi2012": "U-Net", "attention_unet_brats": "Attention U-Net", "deepmedic_brats": "DeepMedic"}


def test_classifier_upload_renders_labels_and_heatmap(page, shared_data, tmp_path):
    assert page.get_by_text("not a medical device").first.is_visible()
    _open_tab(page, "resnet18_pneumonia")
    page.locator("#resnet18_pneumonia-upload input[type=file]").set_input_files(
        str(shared_data / "chest-xray-samples" / "00000001_000.png"))
    _wait_uploaded(page, "resnet18_pneumonia-upload")
    page.locator("#resnet18_pneumonia-run").click()
    page.locator("#resnet18_pneumonia-overlay img").first.wait_for(timeout=60_000)
    page.locator("#resnet18_pneumonia-seen img").first.wait_for(timeout=10_000)
    labels = page.locator("#resnet18_pneumonia-labels").inner_text()
    assert "pneumonia" in labels and "normal" in labels and "%" in labels
    assert page.locator("#resnet18_pneumonia-overlay img").first.evaluate("i => i.naturalWidth") == 512
    shot = _shot(page, "resnet18_pneumonia", tmp_path)
    assert shot.stat().st_size > 10_000


def test_volume_upload_renders_three_views(page, shared_data, tmp_path):
    subject = shared_data / "brats2015-examples" / "brats_2013_pat0003_1"
    files = []
    for name in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"):
        image = nib.load(subject / name)
        crop = image.slicer[90:150, 95:155, 50:90]
        files.append(tmp_path / f"crop_{name}")
        nib.save(nib.Nifti1Image(np.asarray(crop.dataobj, dtype=np.float32), crop.affine), files[-1])
    _open_tab(page, "attention_unet_brats")
    for i, path in enumerate(files):
        page.locator(f"#attention_unet_brats-upload-{i} input[type=file]").set_input_files(str(path))
        _wait_uploaded(page, f"attention_unet_brats-upload-{i}")
    page.locator("#attention_unet_brats-run").click()
    for view in ("axial", "coronal", "sagittal"):
        page.locator(f"#attention_unet_brats-{view} img").first.wait_for(timeout=90_000)
    assert page.get_by_text("UNTRAINED WEIGHTS").first.is_visible() or page.get_by_text("trained weights").count()
    _shot(page, "attention_unet_brats", tmp_path)
    axial = page.locator("#attention_unet_brats-axial img").first
    before = axial.get_attribute("src")
    page.get_by_label("attention", exact=True).check()  # the attention gate's map instead of the mask
    page.wait_for_function("([el, src]) => el.getAttribute('src') !== src", arg=[axial.element_handle(), before],
                           timeout=30_000)
    _shot(page, "attention_unet_brats_attention", tmp_path)


@pytest.mark.parametrize("slug", ["chexnet_pneumonia", "vgg16_pneumonia", "unet_isbi2012", "deepmedic_brats"])
def test_every_tab_renders(page, tmp_path, slug):
    _open_tab(page, slug)
    page.locator(f"#{slug}-run").wait_for(state="visible", timeout=20_000)
    _shot(page, slug, tmp_path)
