"""The Spaces stand on their own (issue 16 §2): `medhub spaces push --org` publishes the model repos, then the
Space repos, through the test write endpoint; each Space is read back through olah into an empty folder, installed
into a fresh virtualenv from its own requirements.txt (medhub from the wheel it holds, see tests/space_venv.py),
started with `python app.py` against olah with no checkout, local zoo or ../shared/data in reach, and asked
through its API (gradio_client) about its own example: the trained weights answer.
One 2D Space (CheXNet) and one 3D Space (DeepMedic), served side by side.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402
from space_venv import FULL_INSTALL, SpaceApp, install_space, shared_packages  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

pytestmark = [pytest.mark.shared_data, pytest.mark.slow, pytest.mark.timeout(3600 if FULL_INSTALL else 1200)]
REPO_ROOT = Path(__file__).resolve().parents[1]
ORG = "spaceorg"
SPACES = ("chexnet-pneumonia", "deepmedic-brats")
XRAY = "examples/chest-xray-samples/00000001_000.png"
SUBJECT = "examples/brats2015-examples/brats_2013_pat0003_1"
WHOLE = "whole volume (slow on CPU: minutes)"


@pytest.fixture(scope="module")
def pushed(shared_data, write_endpoint, olah_server, tmp_path_factory):
    """`medhub spaces push --org spaceorg` for both Spaces; then each Space repo and model repo read from olah."""
    tmp = tmp_path_factory.mktemp("space-push")
    script = f"""
from huggingface_hub import HfApi, snapshot_download
from medhub.cli import main
OLAH, ORG, SPACES = {olah_server.url!r}, {ORG!r}, {SPACES!r}
case("push")(lambda: main(["spaces", "push", "--org", ORG, *SPACES]))
case("spaces")(lambda: {{i: snapshot_download(f"{{ORG}}/{{i}}", repo_type="space", endpoint=OLAH) for i in SPACES}})
case("models")(lambda: {{i: sorted(HfApi(endpoint=OLAH).list_repo_files(f"{{ORG}}/{{i}}")) for i in SPACES}})
"""
    results = run_client(script, endpoint=write_endpoint.url, hf_home=tmp, zoo_dir=REPO_ROOT / "model_zoo",
                         extra_env={"MEDHUB_DATA_DIR": str(shared_data), "HF_HUB_DISABLE_XET": "1"}, timeout=900)
    for name in ("push", "spaces", "models"):
        assert "ok" in results[name], f"{name}: {results[name]}\n{results['_stderr'][-3000:]}"
    # each Space folder alone, copied (links resolved) out of the client's cache into an empty folder
    folders = {}
    for model_id, snapshot in results["spaces"]["ok"].items():
        folders[model_id] = tmp_path_factory.mktemp("space") / model_id
        shutil.copytree(snapshot, folders[model_id], symlinks=False)
    return results, folders


@pytest.fixture(scope="module")
def apps(pushed, olah_server, tmp_path_factory):
    """Each Space installed into its own fresh virtualenv and started; both served at once."""
    work = tmp_path_factory.mktemp("space-apps")
    shared = shared_packages(work / "shared-packages")
    started = {}
    try:
        for model_id, folder in pushed[1].items():
            python = install_space(folder, work / f"venv-{model_id}", shared, work / f"{model_id}-pip.log")
            started[model_id] = SpaceApp(folder, python, work, {
                "HF_ENDPOINT": olah_server.url, "HF_HOME": str(work / f"hf-{model_id}"), "HF_HUB_OFFLINE": "0",
                "MEDHUB_ZOO_DIR": str(work / "no-zoo"), "MEDHUB_DATA_DIR": str(work / "no-data")})
        yield {model_id: app.wait() for model_id, app in started.items()}, work
    finally:
        for app in started.values():
            app.stop()


def test_push_publishes_model_repos_then_complete_spaces(pushed):
    from huggingface_hub import SpaceCard

    from medhub.spaces.repo import wheel_name
    from medhub.zoo import checkpoint

    results, folders = pushed
    assert results["push"]["ok"] == 0
    for model_id, folder in folders.items():
        assert {"config.json", "model.safetensors", "README.md"} <= set(results["models"]["ok"][model_id])
        files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        assert {"README.md", "app.py", "requirements.txt", wheel_name(), "examples/CREDITS.md"} <= files
        card = SpaceCard.load(folder / "README.md")
        entry = checkpoint(model_id)
        assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.python_version
        assert card.data.models == [f"{ORG}/{model_id}"] and card.data.license == entry.license
        assert card.data.get("suggested_hardware") and len(card.data.get("short_description")) <= 60
        assert f"./{wheel_name()}" in (folder / "requirements.txt").read_text().splitlines()
        assert f'default_org="{ORG}"' in (folder / "app.py").read_text()  # the org it was pushed for
        assert all((folder / "examples" / e.path).is_file() for e in entry.space_examples)
    assert checkpoint("deepmedic-brats").license == "cc-by-nc-sa-3.0"  # BraTS-derived weights


def test_space_installs_medhub_only_from_its_own_wheel(apps):
    import subprocess

    served, work = apps
    for model_id in served:
        log = (work / f"{model_id}-pip.log").read_text()
        installed = log.splitlines()[-1].split()
        assert installed[:2] == ["Successfully", "installed"] and "medhub-0.1.0" in installed, log[-2000:]
        assert FULL_INSTALL or installed[2:] == ["medhub-0.1.0"]  # sharing the constrained packages: only medhub
        venv = work / f"venv-{model_id}"
        where = subprocess.run([str(venv / "bin" / "python"), "-c", "from importlib.util import find_spec; "
                                "print(find_spec('medhub').origin, find_spec('spaces').origin)"],
                               cwd=work, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
        medhub, spaces = where.stdout.split()
        assert medhub.startswith(str(venv)), medhub  # the Space wheel's medhub, not the checkout's
        assert "spaces" in spaces  # ZeroGPU's package is there: the demos run under spaces.GPU (a no-op on CPU)


def test_space_says_it_serves_the_pushed_trained_weights(apps, olah_server):
    served, _ = apps
    for model_id, app in served.items():
        config = app.config()
        assert f"Serving `{ORG}/{model_id}`: trained weights from Hugging Face Hub ({olah_server.url}" in config
        assert "UNTRAINED" not in config and "shared/data" not in config


def test_2d_space_answers_its_example_with_the_trained_weights(apps, pushed):
    from medhub import MedModel
    from medhub.predict import classify_image

    served, _ = apps
    example = pushed[1]["chexnet-pneumonia"] / XRAY
    client = Client(served["chexnet-pneumonia"].url, verbose=False)
    _, labels, _, summary = client.predict(handle_file(example), 0.4, api_name="/chexnet_pneumonia")
    probs = {c["label"]: c["confidence"] for c in labels["confidences"]}
    local = MedModel.from_pretrained(str(REPO_ROOT / "model_zoo" / "chexnet-pneumonia"))
    # the Space runs at precision "auto" (bf16 on CPUs with native bf16): the same here, on the same machine
    expected = dict(zip(local.config.labels, classify_image(local, example, precision="auto").probs.tolist()))
    print(f"chexnet-pneumonia Space on {XRAY}: {probs} (medhub with the zoo weights: {expected})")
    assert probs == pytest.approx(expected, abs=1e-5)  # the zoo's trained weights, through the Hub, answered
    assert labels["label"] in summary


def test_3d_space_answers_its_example_with_the_trained_weights(apps, pushed, shared_data):
    served, _ = apps
    folder = pushed[1]["deepmedic-brats"] / SUBJECT
    client = Client(served["deepmedic-brats"].url, verbose=False)
    result = client.predict(handle_file(folder / "Flair_subtrMeanDivStd.nii.gz"),
                            handle_file(folder / "T1c_subtrMeanDivStd.nii.gz"), WHOLE, 0.4, "mask",
                            api_name="/deepmedic_brats")
    mask = nib.load(result[-1])
    flair = nib.load(folder / "Flair_subtrMeanDivStd.nii.gz")
    assert mask.shape == flair.shape and np.allclose(mask.affine, flair.affine)
    labels = np.asarray(mask.dataobj)
    # ground truth of the same crop (held-out subject pat0003), from ../shared/data: the test's, not the Space's
    from medhub.zoo import checkpoint

    crop = tuple(slice(a, b) for a, b in checkpoint("deepmedic-brats").space_examples[0].crop)
    truth = np.asarray(nib.load(shared_data / "brats2015-examples/brats_2013_pat0003_1/OTMultiClass.nii.gz")
                       .dataobj)[crop]
    whole = 2 * ((labels > 0) & (truth > 0)).sum() / ((labels > 0).sum() + (truth > 0).sum())
    rows = {row[0]: float(row[2]) for row in result[-2]["data"]}
    print(f"deepmedic-brats Space on its example crop: whole-tumour Dice {whole:.3f}; volumes (ml) {rows}")
    assert whole > 0.8  # random weights give ~0; the zoo card measures 0.892 on the whole held-out volumes


# -- the examples a Space ships ---------------------------------------------------------------------------------
def test_every_space_ships_examples_its_tab_shows(shared_data, tmp_path):
    from medhub.spaces.repo import write_examples
    from medhub.spaces.uploads import example_paths
    from medhub.zoo import CHECKPOINTS

    for entry in CHECKPOINTS:
        assert entry.usage and entry.space_examples and all(e.credit for e in entry.space_examples)
        written = write_examples(entry, shared_data, tmp_path / entry.id)
        assert (tmp_path / entry.id / "examples" / "CREDITS.md") in written
        assert example_paths(entry, tmp_path / entry.id / "examples"), entry.id  # the tab finds them there
    crop = nib.load(tmp_path / "deepmedic-brats" / SUBJECT / "T1c_subtrMeanDivStd.nii.gz")
    full = nib.load(shared_data / "brats2015-examples/brats_2013_pat0003_1/T1c_subtrMeanDivStd.nii.gz")
    assert crop.shape == (80, 80, 48) and np.allclose(crop.affine @ [0, 0, 0, 1], full.affine @ [58, 113, 56, 1])
    assert np.array_equal(np.asarray(crop.dataobj), np.asarray(full.dataobj)[58:138, 113:193, 56:104])
    from PIL import Image

    label = np.asarray(Image.open(tmp_path / "unet-isbi2012/examples/isbi2012-em/train/label/0.png"))
    assert label.shape == (256, 256) and set(np.unique(label)) == {0, 255}


def test_an_example_crop_that_does_not_fit_is_refused(tmp_path):
    from dataclasses import replace

    from PIL import Image

    from medhub.errors import ConfigError
    from medhub.spaces.repo import write_examples
    from medhub.zoo import SpaceExample, checkpoint

    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "small.png")
    entry = replace(checkpoint("unet-isbi2012"), space_examples=(SpaceExample("small.png", "test", ((0, 20), (0, 5))),))
    with pytest.raises(ConfigError, match=r"small.png: crop .* does not fit its shape \(10, 12\)"):
        write_examples(entry, tmp_path, tmp_path / "space")
