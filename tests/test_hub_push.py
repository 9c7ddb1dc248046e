"""push_to_hub end to end: the real huggingface_hub client writes through the test write endpoint into the
git repo olah serves, and medhub reads the pushed model back through olah, bit-identical, one commit each."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402
from tiny_model import digest, make_model  # noqa: E402

REPO = "alice/tiny-pushed"
PUSHED_FILES = ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]


@pytest.fixture(scope="module")
def pushed(write_endpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("push")
    script = f"""
import hashlib, pathlib
def push_and_read(seed, read_revision=None, **push_kwargs):
    model = tiny_model.make_model(seed=seed)
    out = pathlib.Path("saved-%d" % seed)
    model.save_pretrained(out)
    info = model.push_to_hub({REPO!r}, **push_kwargs)
    back = medhub.MedModel.from_pretrained({REPO!r}, revision=read_revision or push_kwargs.get("revision"))
    return {{"oid": info.oid, "pr_url": info.pr_url, "pr_revision": info.pr_revision, "digest": digest(back),
            "source": back.hub_source, "scale": back.image_processor.scale,
            "saved": {{p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}}}}
case("first")(lambda: push_and_read(3, private=True, commit_message="Add tiny model"))
case("second")(lambda: push_and_read(4))
case("branch")(lambda: push_and_read(5, revision="dev"))
case("pr")(lambda: push_and_read(6, create_pr=True, read_revision="refs/pr/1"))
"""
    results = run_client(script, endpoint=write_endpoint.url, hf_home=tmp)
    return results, write_endpoint.repo_dir(REPO)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def ok(results, name):
    assert "ok" in results[name], f"{name}: {results[name]}"
    return results[name]["ok"]


def changed_files(repo: Path, sha: str) -> list[str]:
    return sorted(git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split())


@pytest.mark.parametrize("name,seed", [("first", 3), ("second", 4), ("branch", 5), ("pr", 6)])
def test_pushed_model_reads_back_bit_identical(pushed, write_endpoint, name, seed):
    outcome = ok(pushed[0], name)
    assert outcome["digest"] == digest(make_model(seed=seed))
    assert outcome["scale"] == 0.5  # the processor travelled with the weights
    assert outcome["source"] == f"Hugging Face Hub ({write_endpoint.url})"


@pytest.mark.parametrize("name", ["first", "second", "branch", "pr"])
def test_each_push_is_one_commit_with_exactly_the_model_files(pushed, name):
    results, repo = pushed
    outcome = ok(results, name)
    tree = sorted(git(repo, "ls-tree", "--name-only", outcome["oid"]).split())
    assert tree == sorted([".gitattributes", *PUSHED_FILES])  # .gitattributes: the repo's initial commit
    # The first push adds every file; later ones only what changed (the client skips files whose git oid the
    # preupload answer reports unchanged, as on the Hub): here the weights.
    assert changed_files(repo, outcome["oid"]) == (PUSHED_FILES if name == "first" else ["model.safetensors"])
    for path, sha256 in outcome["saved"].items():  # the committed bytes are what save_pretrained wrote
        blob = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", f"{outcome['oid']}:{path}"],
                              capture_output=True, check=True).stdout
        assert hashlib.sha256(blob).hexdigest() == sha256, path


def test_main_history(pushed):
    results, repo = pushed
    first, second = ok(results, "first")["oid"], ok(results, "second")["oid"]
    history = git(repo, "rev-list", "main").split()
    assert history[:2] == [second, first] and len(history) == 3  # + the repo's initial .gitattributes commit
    assert git(repo, "log", "-1", "--format=%s", first) == "Add tiny model"
    assert sorted(git(repo, "ls-tree", "--name-only", "main").split()) == sorted([".gitattributes", *PUSHED_FILES])


def test_revision_push_goes_to_its_branch_only(pushed):
    results, repo = pushed
    branch = ok(results, "branch")["oid"]
    assert git(repo, "rev-parse", "dev") == branch
    assert git(repo, "rev-parse", f"{branch}^") == ok(results, "second")["oid"]  # branched from main's head
    assert branch not in git(repo, "rev-list", "main").split()


def test_create_pr_opens_refs_pr_1(pushed):
    results, repo = pushed
    pr = ok(results, "pr")
    assert pr["pr_revision"] == "refs/pr/1" and pr["pr_url"].endswith(f"/{REPO}/discussions/1")
    assert git(repo, "rev-parse", "refs/pr/1") == pr["oid"]
    assert git(repo, "rev-parse", f"{pr['oid']}^") == ok(results, "second")["oid"]
    assert pr["oid"] not in git(repo, "rev-list", "main").split()


def test_client_used_the_hub_write_api_without_lfs(pushed, write_endpoint):
    calls = write_endpoint.requests_seen
    assert calls.count("POST /api/repos/create") == 4
    assert f"POST /api/models/{REPO}/branch/dev" in calls
    assert sum(c.startswith(f"POST /api/models/{REPO}/commit/") for c in calls) == 4
    assert not any("lfs" in c for c in calls)
