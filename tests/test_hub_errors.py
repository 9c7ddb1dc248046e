"""Bad repos and folders are refused with errors that name the file and what was expected; pickles never run.

The same bad models are served by olah (Hub ids) and kept as local folders; the folder cases run in a
client whose HF_ENDPOINT is a closed 127.0.0.1 port, which also gives the unreachable-endpoint case."""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import closed_port, folder_files, make_repo, run_client  # noqa: E402
from tiny_model import make_model  # noqa: E402

from medhub.errors import CorruptWeightsError  # noqa: E402

KINDS = ["pickle-only", "corrupt", "mismatch", "unknown-type"]
# Weight files that must be refused before loading (issue 15, part 3), served by olah and as folders.
WEIGHT_KINDS = ["index-outside", "index-absolute", "index-dev-zero", "index-pickle", "index-list", "index-overflow",
                "shard-nan", "float8-e4m3-nan", "float8-e5m2-inf", "u8-weights", "sharded-ok"]
LOCAL_KINDS = ["index-symlink-out", "fifo", "huge-shape", "header-100m"]  # a git repo cannot serve these


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


def index(folder: Path, weight_map: dict | list, metadata: str = "{}") -> None:
    text = json.dumps(weight_map) if isinstance(weight_map, list) else json.dumps({"weight_map": weight_map})
    (folder / "model.safetensors.index.json").write_text(text.replace("{", '{"metadata": ' + metadata + ", ", 1)
                                                         if metadata != "{}" and text.startswith("{") else text)


def replace_tensor(folder: Path, name: str, tensor: torch.Tensor, file: str = "model.safetensors") -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(folder / file)
    state[name] = tensor
    save_file(state, folder / file)


def bad_weight_folders(tmp: Path, marker: Path, local: bool) -> dict[str, Path]:
    """Folders whose weight files medhub must refuse (or, sharded-ok, load) before any weight is loaded."""
    good = tmp / "good"
    if not good.exists():
        make_model(seed=0).save_pretrained(good)
    outside = tmp / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "evil.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    keys = ["conv.weight", "conv.bias", "classifier.weight", "classifier.bias"]
    folders = {}
    for kind in WEIGHT_KINDS + (LOCAL_KINDS if local else []):
        folder = folders[kind] = tmp / kind
        if kind in ("sharded-ok", "shard-nan"):
            make_model(seed=0).save_pretrained(folder, max_shard_size=100)  # two shards and an index
            assert len(list(folder.glob("model-*.safetensors"))) > 1
        else:
            shutil.copytree(good, folder)
    for kind, target in [("index-outside", "../outside/evil.safetensors"), ("index-absolute",
                         str(outside / "evil.safetensors")), ("index-dev-zero", "/dev/zero"),
                         ("index-pickle", "pytorch_model.bin")]:
        index(folders[kind], {k: target for k in keys})
    torch.save({"conv.weight": Evil(marker)}, folders["index-pickle"] / "pytorch_model.bin")
    index(folders["index-list"], [{"conv.weight": "model.safetensors"}])
    index(folders["index-overflow"], {k: "model.safetensors" for k in keys}, metadata='{"total_size": 1e999}')
    last = sorted(folders["shard-nan"].glob("model-*.safetensors"))[-1]
    from safetensors.torch import load_file

    name = sorted(load_file(last))[0]
    replace_tensor(folders["shard-nan"], name, torch.full_like(load_file(last)[name], float("nan")), last.name)
    conv = make_model(seed=0).state_dict()["conv.weight"]
    for kind, byte, dtype in [("float8-e4m3-nan", 0x7F, torch.float8_e4m3fn), ("float8-e5m2-inf", 0x7C,
                                                                               torch.float8_e5m2)]:
        replace_tensor(folders[kind], "conv.weight", torch.full(conv.shape, byte, dtype=torch.uint8).view(dtype))
    replace_tensor(folders["u8-weights"], "conv.weight", torch.full(conv.shape, 255, dtype=torch.uint8))
    if local:
        shard = folders["index-symlink-out"] / "model-00001-of-00001.safetensors"
        shard.symlink_to(outside / "evil.safetensors")
        (folders["index-symlink-out"] / "model.safetensors").unlink()
        index(folders["index-symlink-out"], {k: shard.name for k in keys})
        (folders["fifo"] / "model.safetensors").unlink()
        os.mkfifo(folders["fifo"] / "model.safetensors")
        huge_shape(folders["huge-shape"] / "model.safetensors")
        huge_header(folders["header-100m"] / "model.safetensors", 100_000_512)
    return folders


def rewrite_header(file: Path, change) -> None:
    raw = file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    change(header)
    body = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


def huge_shape(file: Path) -> None:
    """A zero-size tensor of shape [2**70, 0]: the byte ranges add up, the Rust loader's usize does not."""
    def change(header):
        end = max(m["data_offsets"][1] for k, m in header.items() if k != "__metadata__")
        header["ghost"] = {"dtype": "F32", "shape": [2**70, 0], "data_offsets": [end, end]}
    rewrite_header(file, change)


def huge_header(file: Path, length: int) -> None:
    """The same tensors behind a JSON header padded to `length` bytes (between safetensors' 100,000,000-byte
    limit and medhub's former 100 MiB)."""
    raw = file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    body = raw[8:8 + n] + b" " * (length - n)
    file.write_bytes(struct.pack("<Q", length) + body + raw[8 + n:])


@pytest.fixture(scope="module")
def world(olah_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("errors")
    marker = tmp / "PWNED"
    folders = bad_folders(tmp / "folders", marker)
    for kind, folder in folders.items():
        make_repo(olah_server.mirrors, f"medhub/bad-{kind}", [folder_files(folder)])
    served = bad_weight_folders(tmp / "served", marker, local=False)
    for kind, folder in served.items():
        make_repo(olah_server.mirrors, f"medhub/bad-{kind}", [folder_files(folder)])
    folders.update(bad_weight_folders(tmp / "weights", marker, local=True))
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
    ids = {kind: f"medhub/bad-{kind}" for kind in KINDS + WEIGHT_KINDS}
    script = CASES + f"""
cases("hub", {ids!r})
case("unknown-id")(lambda: medhub.MedModel.from_pretrained("medhub/no-such-model"))
"""
    return run_client(script, endpoint=olah_server.url, hf_home=world["tmp"] / "hf-hub", zoo_dir=world["tmp"] / "zoo")


@pytest.fixture(scope="module")
def cache_results(world, olah_server, hub_results):
    """The same repo ids, offline, served from the HF cache that `hub_results` filled."""
    script = f"""
for kind in {WEIGHT_KINDS!r}:
    case("hub:" + kind)(lambda kind=kind: medhub.MedModel.from_pretrained("medhub/bad-" + kind) and None)
"""
    return run_client(script, endpoint=olah_server.url, hf_home=world["tmp"] / "hf-hub", offline=True,
                      zoo_dir=world["tmp"] / "zoo")


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


@pytest.fixture(params=["hub", "hf-cache", "folder"])
def weight_results(request, hub_results, cache_results, folder_results):
    prefix = "folder" if request.param == "folder" else "hub"
    return prefix, {"hub": hub_results, "hf-cache": cache_results, "folder": folder_results}[request.param]


INDEX_ERRORS = {
    "index-outside": "weight_map names '../outside/evil.safetensors'; expected a .safetensors file name inside",
    "index-absolute": "/outside/evil.safetensors'; expected a .safetensors file name inside",
    "index-dev-zero": "weight_map names '/dev/zero'; expected a .safetensors file name inside",
    "index-pickle": "weight_map names 'pytorch_model.bin'; expected a .safetensors file name inside",
    "index-list": "expected a JSON object with a non-empty 'weight_map' (tensor name -> shard file), got list",
    "index-overflow": "not a readable JSON index (ValueError: 1e999 is not a finite number",
}


@pytest.mark.parametrize("kind", sorted(INDEX_ERRORS))
def test_index_entries_must_be_safetensors_files_inside_the_folder(world, weight_results, kind):
    where, res = weight_results
    message = error(res, f"{where}:{kind}", "CorruptWeightsError")
    assert "model.safetensors.index.json: " in message and INDEX_ERRORS[kind] in message
    assert not world["marker"].exists()  # the pickle named in the index was never read


def test_each_shard_is_checked_like_the_single_file(weight_results):
    where, res = weight_results
    assert res[f"{where}:sharded-ok"].get("ok") is None and "error" not in res[f"{where}:sharded-ok"]
    message = error(res, f"{where}:shard-nan", "CorruptWeightsError")
    assert "model-00002-of-00002.safetensors: not a valid safetensors file" in message and "holds NaN or Inf" in message


def test_float8_nan_inf_and_integer_weights_are_refused(weight_results):
    where, res = weight_results
    for kind in ("float8-e4m3-nan", "float8-e5m2-inf"):
        message = error(res, f"{where}:{kind}", "CorruptWeightsError")
        assert "model.safetensors: not a valid safetensors file: tensor 'conv.weight' holds NaN or Inf" in message
    message = error(res, f"{where}:u8-weights", "WeightsMismatchError")
    assert "integer weights where the model expects floating-point ones: conv.weight (U8, the model's is float32)" \
        in message


def test_symlinked_shard_fifo_absurd_shape_and_oversized_header_are_corrupt(folder_results, world):
    expected = {
        "index-symlink-out": "shard 'model-00001-of-00001.safetensors' leads outside the model folder (to "
                             f"{world['tmp'] / 'weights' / 'outside' / 'evil.safetensors'})",
        "fifo": "model.safetensors: is a FIFO; expected a regular safetensors file",  # and it did not hang
        "huge-shape": "tensor 'ghost' has an absurd shape [1180591620717411303424, 0]",
        "header-100m": "declared header length 100,000,512 is over safetensors' limit of 100,000,000 bytes",
    }
    for kind, text in expected.items():
        assert text in error(folder_results, f"folder:{kind}", "CorruptWeightsError"), kind


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

    from medhub.weights_files import check_safetensors_file

    finite = torch.tensor([0.0, -0.0, 1.5, -2.0, torch.finfo(dtype).max, -torch.finfo(dtype).max], dtype=dtype)
    tensors = {"a.weight": finite.clone(), "b.weight": finite.clone(), "c.index": torch.arange(4)}
    save_file(tensors, tmp_path / "ok.safetensors")
    check_safetensors_file(tmp_path / "ok.safetensors")  # largest finite values and signed zeros pass
    tensors["b.weight"][2] = bad
    save_file(tensors, tmp_path / "bad.safetensors")
    with pytest.raises(CorruptWeightsError, match=r"bad.safetensors.*'b.weight' holds NaN or Inf"):
        check_safetensors_file(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("entry", [["x"], None, 7, "", ".", "sub/../model.safetensors", "model.safetensors\x00",
                                   "C:\\weights\\model.safetensors", "missing.safetensors"])
def test_malformed_index_entries_are_corrupt_weights(tmp_path, entry):
    """Entries the fuzzer's index family produces (a list once gave a raw TypeError): each a named error."""
    from medhub.weights_files import check_model_folder

    make_model(seed=0).save_pretrained(tmp_path)
    index(tmp_path, {"conv.weight": "model.safetensors", "conv.bias": entry})
    with pytest.raises(CorruptWeightsError, match="model.safetensors.index.json: "):
        check_model_folder(tmp_path)
