"""Bad repos and folders are refused with errors that name the file and what was expected; pickles never run.

The same bad models are served by olah (Hub ids) and kept as local folders; the folder cases run in a
client whose HF_ENDPOINT is a closed 127.0.0.1 port, which also gives the unreachable-endpoint case."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import closed_port, folder_files, make_repo, run_client  # noqa: E402
from tiny_model import make_model  # noqa: E402

from medhub.errors import CorruptWeightsError  # noqa: E402

KINDS = ["pickle-only", "corrupt", "mismatch", "unknown-type"]


class Evil:
    """Unpickling this runs code that creates `marker`: the attack a downloaded .bin can carry."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def bad_folders(tmp: Path, marker: Path) -> dict[str, Path]:
    good = tmp / "good"
    make_model(seed=0).save_pretrained(good)
    folders = {}
    for kind in KINDS:
        folder = folders[kind] = tmp / kind
        shutil.copytree(good, folder)
    (folders["pickle-only"] / "model.safetensors").unlink()
    torch.save({"conv.weight": Evil(marker)}, folders["pickle-only"] / "pytorch_model.bin")
    weights = folders["corrupt"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # a truncated download
    for kind, change in [("mismatch", {"width": 8}), ("unknown-type", {"model_type": "no-such-model"})]:
        config = json.loads((folders[kind] / "config.json").read_text())
        (folders[kind] / "config.json").write_text(json.dumps({**config, **change}))
    return folders


@pytest.fixture(scope="module")
def world(olah_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("errors")
    marker = tmp / "PWNED"
    folders = bad_folders(tmp / "folders", marker)
    for kind, folder in folders.items():
        make_repo(olah_server.mirrors, f"medhub/bad-{kind}", [folder_files(folder)])
    return {"tmp": tmp, "marker": marker, "folders": folders}


CASES = """
import transformers
def cases(prefix, ids):
    for kind, name in ids.items():
        case(f"{prefix}:{kind}")(lambda name=name: medhub.MedModel.from_pretrained(name) and None)
    case(f"{prefix}:auto-pickle")(lambda: transformers.AutoModel.from_pretrained(ids["pickle-only"]) and None)
    case(f"{prefix}:config-unknown-type")(lambda: medhub.MedConfig.from_pretrained(ids["unknown-type"]) and None)
"""


@pytest.fixture(scope="module")
def hub_results(world, olah_server):
    ids = {kind: f"medhub/bad-{kind}" for kind in KINDS}
    script = CASES + f"""
cases("hub", {ids!r})
case("unknown-id")(lambda: medhub.MedModel.from_pretrained("medhub/no-such-model"))
"""
    return run_client(script, endpoint=olah_server.url, hf_home=world["tmp"] / "hf-hub", zoo_dir=world["tmp"] / "zoo")


@pytest.fixture(scope="module")
def folder_results(world):
    ids = {kind: str(folder) for kind, folder in world["folders"].items()}
    script = CASES + f"""
cases("folder", {ids!r})
case("unreachable")(lambda: medhub.MedModel.from_pretrained("someone/some-model"))
"""
    return run_client(script, endpoint=f"http://127.0.0.1:{closed_port()}", hf_home=world["tmp"] / "hf-folder")


def error(results, name, expected):
    outcome = results[name]
    assert outcome.get("error") == expected, f"{name}: {outcome}"
    return outcome["message"]


@pytest.fixture(params=["hub", "folder"])
def results(request, hub_results, folder_results):
    return request.param, {"hub": hub_results, "folder": folder_results}[request.param]


def test_pickle_only_is_refused_and_points_to_convert(results):
    where, res = results
    for name in (f"{where}:pickle-only", f"{where}:auto-pickle"):
        message = error(res, name, "PickleWeightsError")
        assert "pytorch_model.bin" in message and "medhub convert pytorch_model.bin" in message


def test_malicious_pickle_never_runs(world, hub_results, folder_results, tmp_path):
    assert not world["marker"].exists()
    # Control: the same payload does run when unpickled, so its absence above means it was never unpickled.
    control = tmp_path / "control.bin"
    torch.save({"w": Evil(tmp_path / "control-marker")}, control)
    torch.load(control, weights_only=False)
    assert (tmp_path / "control-marker").exists()


def test_truncated_safetensors_is_corrupt_and_named(results):
    where, res = results
    message = error(res, f"{where}:corrupt", "CorruptWeightsError")
    assert "model.safetensors: not a valid safetensors file" in message and "truncated or corrupt" in message


def test_config_that_does_not_fit_the_weights_names_the_keys(results):
    where, res = results
    message = error(res, f"{where}:mismatch", "WeightsMismatchError")
    assert "the weights do not fit config.json" in message
    assert "conv.weight" in message and "classifier.weight" in message


def test_unknown_model_type_is_a_config_error(results):
    where, res = results
    for name in (f"{where}:unknown-type", f"{where}:config-unknown-type"):
        message = error(res, name, "ConfigError")
        assert "config.json: unknown model_type 'no-such-model'" in message and "medhub-test-tiny" in message


def test_unknown_id_lists_local_hub_and_zoo(hub_results, world):
    message = error(hub_results, "unknown-id", "ModelNotFoundError")
    assert "local folder medhub/no-such-model: does not exist" in message
    assert "Hugging Face Hub http://127.0.0.1:" in message and "repository not found" in message
    assert f"medhub zoo: zoo folder {world['tmp'] / 'zoo'} does not exist" in message


def test_unreachable_endpoint_for_a_non_medhub_id(folder_results):
    message = error(folder_results, "unreachable", "ModelNotFoundError")
    assert "unreachable (" in message and "is not in the local cache" in message
    assert "medhub zoo: not consulted, it only holds ids under medhub/" in message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_and_the_tensor_named(tmp_path, dtype, bad):
    from safetensors.torch import save_file

    from medhub.hub import check_safetensors_file

    finite = torch.tensor([0.0, -0.0, 1.5, -2.0, torch.finfo(dtype).max, -torch.finfo(dtype).max], dtype=dtype)
    tensors = {"a.weight": finite.clone(), "b.weight": finite.clone(), "c.index": torch.arange(4)}
    save_file(tensors, tmp_path / "ok.safetensors")
    check_safetensors_file(tmp_path / "ok.safetensors")  # largest finite values and signed zeros pass
    tensors["b.weight"][2] = bad
    save_file(tensors, tmp_path / "bad.safetensors")
    with pytest.raises(CorruptWeightsError, match=r"bad.safetensors.*'b.weight' holds NaN or Inf"):
        check_safetensors_file(tmp_path / "bad.safetensors")
