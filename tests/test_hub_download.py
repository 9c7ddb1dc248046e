"""Download path end to end: a real HF-compatible server (olah) on 127.0.0.1 serving git repos, the real
huggingface_hub client in a fresh process, revisions (branch, tag, full and short sha), the cache when
offline or unreachable, and the fallback to the local zoo for ids under medhub/."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import closed_port, folder_files, make_repo, run_client  # noqa: E402
from tiny_model import digest, make_model  # noqa: E402

REPO = "medhub/tiny-a"


def saved(tmp: Path, name: str, **kwargs) -> tuple[dict[str, bytes], str]:
    model = make_model(**kwargs)
    model.save_pretrained(tmp / name)
    return folder_files(tmp / name), digest(model)


@pytest.fixture(scope="module")
def world(olah_server, tmp_path_factory):
    """Repo medhub/tiny-a: v1 (tag) = seed 0, main = seed 1, branch exp = seed 2 with width 6; a zoo."""
    tmp = tmp_path_factory.mktemp("download")
    files0, d0 = saved(tmp, "v1", seed=0)
    files1, d1 = saved(tmp, "main", seed=1)
    files2, d2 = saved(tmp, "exp", seed=2, width=6)
    shas = make_repo(olah_server.mirrors, REPO, [files0, files1], tags={"v1": 0}, branches={"exp": files2})
    zoo = tmp / "zoo"
    _, dz = saved(zoo, "chexnet-pneumonia", seed=7)
    return {"tmp": tmp, "zoo": zoo, "shas": shas, "d0": d0, "d1": d1, "d2": d2, "dz": dz,
            "bytes0": hashlib.sha256(files0["model.safetensors"]).hexdigest(), "hf_home": tmp / "hf-home"}


LOAD = """
def load(name, **kw):
    model = medhub.MedModel.from_pretrained(name, **kw)
    return [digest(model), model.hub_source]
"""


@pytest.fixture(scope="module")
def online(world, olah_server):
    sha0 = world["shas"][0]
    script = LOAD + f"""
import hashlib, transformers
from huggingface_hub import hf_hub_download, snapshot_download
for rev in ["main", "exp", "v1", {sha0!r}, {sha0[:7]!r}]:
    case("rev:" + rev)(lambda rev=rev: load({REPO!r}, revision=rev))
case("default")(lambda: load({REPO!r}))
case("bytes")(lambda: hashlib.sha256(
    open(hf_hub_download({REPO!r}, "model.safetensors", revision="v1"), "rb").read()).hexdigest())
case("snapshot")(lambda: sorted(os.listdir(snapshot_download({REPO!r}, revision="exp"))))
@case("transformers")
def _():
    model = transformers.AutoModel.from_pretrained({REPO!r}, revision="v1")
    return [type(model).__name__, digest(model)]
case("config")(lambda: medhub.MedConfig.from_pretrained({REPO!r}, revision="exp").width)
case("zoo-alias")(lambda: load("medhub/chexnet"))
case("zoo-name")(lambda: load("medhub/chexnet-pneumonia"))
case("zoo-config")(lambda: medhub.MedConfig.from_pretrained("medhub/chexnet").model_type)
case("missing")(lambda: load("medhub/nothing-here"))
case("bad-revision")(lambda: load({REPO!r}, revision="no-such-branch"))
"""
    return run_client(script, endpoint=olah_server.url, hf_home=world["hf_home"], zoo_dir=world["zoo"])


@pytest.fixture(scope="module")
def offline(world, online):
    """HF_HUB_OFFLINE=1 over the cache the online run filled (endpoint: a closed port, never contacted)."""
    script = LOAD + f"""
case("cached-main")(lambda: load({REPO!r}))
case("cached-tag")(lambda: load({REPO!r}, revision="v1"))
case("zoo")(lambda: load("medhub/chexnet"))
case("zoo-config")(lambda: medhub.MedConfig.from_pretrained("medhub/chexnet").model_type)
case("missing")(lambda: load("medhub/nothing-here"))
"""
    return run_client(script, endpoint=f"http://127.0.0.1:{closed_port()}", hf_home=world["hf_home"],
                      offline=True, zoo_dir=world["zoo"])


@pytest.fixture(scope="module")
def unreachable(world, online):
    """HF_ENDPOINT on a closed 127.0.0.1 port, a fresh HF_HOME; the online cache is reachable via cache_dir."""
    script = LOAD + f"""
case("zoo")(lambda: load("medhub/chexnet"))
case("not-in-zoo")(lambda: load({REPO!r}))
case("cache_dir")(lambda: load({REPO!r}, cache_dir={str(world['hf_home'] / 'hub')!r}))
"""
    return run_client(script, endpoint=f"http://127.0.0.1:{closed_port()}", hf_home=world["tmp"] / "hf-fresh",
                      zoo_dir=world["zoo"])


def ok(results, name):
    outcome = results[name]
    assert "ok" in outcome, f"{name}: {outcome}"
    return outcome["ok"]


@pytest.mark.parametrize("rev,expected", [("main", "d1"), ("exp", "d2"), ("v1", "d0"), ("sha", "d0"),
                                          ("short-sha", "d0")])
def test_revisions_resolve_to_their_weights(world, online, olah_server, rev, expected):
    name = {"sha": world["shas"][0], "short-sha": world["shas"][0][:7]}.get(rev, rev)
    model_digest, source = ok(online, f"rev:{name}")
    assert model_digest == world[expected]
    assert source == f"Hugging Face Hub ({olah_server.url})"
    assert any(f"from the Hugging Face Hub ({olah_server.url})" in line for line in online[f"rev:{name}"]["log"])


def test_default_revision_is_main(world, online):
    assert ok(online, "default")[0] == world["d1"]


def test_bytes_arrive_intact(world, online):
    assert ok(online, "bytes") == world["bytes0"]


def test_snapshot_holds_the_branch_files(online):
    assert ok(online, "snapshot") == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]


def test_transformers_auto_model_after_import_medhub(world, online):
    assert ok(online, "transformers") == ["TinyModel", world["d0"]]


def test_config_from_the_hub(online):
    assert ok(online, "config") == 6


@pytest.mark.parametrize("name", ["zoo-alias", "zoo-name"])
def test_id_absent_from_the_hub_falls_back_to_the_zoo(world, online, name):
    model_digest, source = ok(online, name)
    assert model_digest == world["dz"]
    assert source == f"medhub zoo ({world['zoo'] / 'chexnet-pneumonia'})"
    assert any("from the local medhub zoo" in line for line in online[name]["log"])
    assert ok(online, "zoo-config") == "medhub-test-tiny"


def test_unknown_id_lists_every_source(world, online):
    outcome = online["missing"]
    assert outcome["error"] == "ModelNotFoundError"
    assert "local folder medhub/nothing-here: does not exist" in outcome["message"]
    assert "Hugging Face Hub http://127.0.0.1:" in outcome["message"]
    assert f"medhub zoo: {world['zoo']} has no model 'nothing-here' (present: chexnet-pneumonia)" in outcome["message"]


def test_unknown_revision_is_named(online):
    outcome = online["bad-revision"]
    assert outcome["error"] == "ModelNotFoundError"
    assert "revision 'no-such-branch' not found (the repo exists)" in outcome["message"]
    assert "zoo: not consulted, revision 'no-such-branch' was asked for" in outcome["message"]


def test_offline_serves_the_cache(world, offline):
    for name, expected in [("cached-main", "d1"), ("cached-tag", "d0")]:
        model_digest, source = ok(offline, name)
        assert model_digest == world[expected]
        assert "offline: local cache" in source


def test_offline_falls_back_to_the_zoo(world, offline):
    assert ok(offline, "zoo") == [world["dz"], f"medhub zoo ({world['zoo'] / 'chexnet-pneumonia'})"]
    assert ok(offline, "zoo-config") == "medhub-test-tiny"
    assert "HF_HUB_OFFLINE is set" in offline["missing"]["message"]
    assert offline["missing"]["error"] == "ModelNotFoundError"


def test_unreachable_endpoint_falls_back_to_the_zoo(world, unreachable):
    assert ok(unreachable, "zoo") == [world["dz"], f"medhub zoo ({world['zoo'] / 'chexnet-pneumonia'})"]
    assert any("the Hub had no copy: unreachable" in line for line in unreachable["zoo"]["log"])


def test_unreachable_endpoint_uses_the_cache_then_reports_every_source(world, unreachable):
    model_digest, source = ok(unreachable, "cache_dir")
    assert model_digest == world["d1"] and "unreachable: local cache" in source
    outcome = unreachable["not-in-zoo"]
    assert outcome["error"] == "ModelNotFoundError"
    assert "unreachable (" in outcome["message"] and "has no model 'tiny-a'" in outcome["message"]


def test_zoo_alias_to_a_missing_folder_is_named(tmp_path, monkeypatch):
    """Aliases are the catalogue's (medhub/chexnet -> chexnet-pneumonia); a zoo without the folder says which."""
    from medhub import zoo

    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path))
    folder, why = zoo.find("chexnet")
    assert folder is None and "has no model 'chexnet' (an alias of 'chexnet-pneumonia')" in why
