"""A test-only stand-in for the Hugging Face Hub's *write* API, in front of a read-only mirror (olah).

Why it exists: no self-hostable server implements the Hub's write API (olah answers 405), yet `push_to_hub`
must be proven end to end with the real `huggingface_hub` client. The client uses ONE endpoint
(HF_ENDPOINT) for reads and writes, so this server is a small reverse proxy:

- GET/HEAD (and anything it does not implement) is forwarded unchanged to olah, which serves the git repos
  under `<mirrors>/models/<org>/<repo>`;
- the write calls `huggingface_hub` 2.4 makes for `create_repo` + `create_branch` + `create_commit` are
  handled here and written with git into the SAME repos olah serves (`<mirrors>/models/...` for models,
  `<mirrors>/datasets/...` for datasets, as `datasets.push_to_hub` makes them, `<mirrors>/spaces/...` for Spaces,
  as `medhub spaces push` makes them; `<type>` below is any of the three):
    POST /api/repos/create                         bare repo + the Hub's initial `.gitattributes` commit (a
                                                   Space must name its `sdk`, as on the Hub)
    POST /api/validate-yaml                        parses the README front matter with PyYAML
    POST /api/<type>/<org>/<repo>/branch/<b>       a branch from `startingPoint` (default main)
    POST /api/<type>/<org>/<repo>/preupload/<rev>  every file gets uploadMode "regular" (contents inline),
                                                   except *.parquet in dataset repos: "lfs", as the Hub's
                                                   dataset .gitattributes makes them (datasets relies on it)
    POST /[datasets/]<org>/<repo>.git/info/lfs/objects/batch   the LFS batch API, "basic" transfer: upload
                                                   actions pointing at PUT /lfs-upload/<sha256> here
    PUT  /lfs-upload/<sha256>                      stores the object (its sha256 checked)
    POST /api/<type>/<org>/<repo>/commit/<rev>     the NDJSON commit: one git commit on the branch, or on
                                                   refs/pr/N with ?create_pr=1 (N counts up, as on the Hub)

What it does NOT cover: Xet uploads (run the client with HF_HUB_DISABLE_XET=1 when it pushes LFS files),
LFS pointers in git (an "lfsFile" commit operation writes the uploaded object's bytes as a plain blob, so olah
serves the content), LFS for model and Space repos (their files are always inlined base64, where the Hub would
ask for LFS for binary files), authentication and permissions (tokens are ignored, `private` is accepted and
ignored), building or running Spaces, deletions of folders, and every other Hub API (discussions, tags,
settings, Space variables and hardware...). Errors use the Hub's
X-Error-Code headers so the client raises its usual exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GIT_ENV = {
    "GIT_AUTHOR_NAME": "medhub-tests", "GIT_AUTHOR_EMAIL": "tests@medhub.invalid",
    "GIT_COMMITTER_NAME": "medhub-tests", "GIT_COMMITTER_EMAIL": "tests@medhub.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


# -- git plumbing (no working tree: any branch or refs/pr/N can be written directly) --------------------
def git(repo: Path, *args: str, input: bytes | None = None, index: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    out = subprocess.run(["git", "-C", str(repo), *args], input=input, env=env, capture_output=True, check=True)
    return out.stdout.decode().strip()


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], env={**os.environ, **GIT_ENV}, check=True)


def resolve(repo: Path, rev: str) -> str | None:
    """Commit sha of `rev` (branch, tag, refs/pr/N, full or short sha), or None."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        return None


def commit_files(repo: Path, ref: str, files: dict[str, bytes], message: str, *, parent: str | None = None,
                 deletions: tuple[str, ...] = ()) -> str:
    """Write one commit on `ref` (e.g. refs/heads/main) adding `files` on top of `parent`; return its sha."""
    index = repo / f"index-{threading.get_ident()}"
    try:
        if parent:
            git(repo, "read-tree", parent, index=index)
        else:
            git(repo, "read-tree", "--empty", index=index)
        for path, data in files.items():
            blob = git(repo, "hash-object", "-w", "--stdin", input=data)
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", index=index)
        for path in deletions:
            git(repo, "update-index", "--force-remove", path, index=index)
        tree = git(repo, "write-tree", index=index)
    finally:
        index.unlink(missing_ok=True)
    sha = git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
    git(repo, "update-ref", ref, sha)
    return sha


def blob_oid(repo: Path, rev: str, path: str) -> str | None:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}:{path}")
    except subprocess.CalledProcessError:
        return None


# -- the server --------------------------------------------------------------------------------------------
class HubError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class WriteEndpoint(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, mirrors: Path, upstream_port: int):
        super().__init__(("127.0.0.1", port), _Handler)
        self.mirrors = Path(mirrors)
        self.upstream_port = upstream_port
        self.lock = threading.Lock()  # one write at a time, like the Hub's per-repo commit lock
        self.requests_seen: list[str] = []  # "METHOD path" of every write call, for tests
        self.lfs_objects = self.mirrors.parent / f"lfs-objects-{port}"  # sha256 -> uploaded bytes
        self.lfs_objects.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def repo_dir(self, repo_id: str, repo_type: str = "model") -> Path:
        return self.mirrors / f"{repo_type}s" / repo_id

    def existing_repo(self, repo_id: str, repo_type: str = "model") -> Path:
        path = self.repo_dir(repo_id, repo_type)
        if not (path / "HEAD").is_file():
            raise HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        return path


class _Handler(BaseHTTPRequestHandler):
    server: WriteEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # -- dispatch ----------------------------------------------------------------------------------
    def do_GET(self):
        self._proxy()

    def do_HEAD(self):
        self._proxy()

    def do_PUT(self):
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests_seen.append(f"PUT {url.path}")
        match = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", url.path)
        if not match:
            return self._json(405, {"error": f"PUT {url.path} is not supported"})
        if hashlib.sha256(body).hexdigest() != match[1]:
            return self._json(400, {"error": f"uploaded bytes do not hash to {match[1]}"})
        (self.server.lfs_objects / match[1]).write_bytes(body)
        self._json(200, {})

    def do_POST(self):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests_seen.append(f"POST {url.path}")
        try:
            with self.server.lock:
                if url.path.endswith(".git/info/lfs/objects/batch"):
                    return self._json(200, self._lfs_batch(json.loads(body)))
                if url.path == "/api/repos/create":
                    return self._json(200, self._create_repo(json.loads(body)))
                if url.path == "/api/validate-yaml":
                    return self._validate_yaml(json.loads(body))
                # /api/{models,datasets,spaces}/<org>/<name>/<action>/<rev...>
                if len(parts) >= 7 and parts[1] == "api" and parts[2] in ("models", "datasets", "spaces"):
                    repo_type = parts[2][:-1]
                    repo_id, action, rev = f"{parts[3]}/{parts[4]}", parts[5], unquote("/".join(parts[6:]))
                    query = parse_qs(url.query)
                    if action == "branch":
                        return self._json(200, self._create_branch(repo_id, rev, json.loads(body or b"{}"),
                                                                   repo_type))
                    if action == "preupload":
                        return self._json(200, self._preupload(repo_id, rev, json.loads(body), repo_type))
                    if action == "commit":
                        return self._json(200, self._commit(repo_id, rev, body, query.get("create_pr") == ["1"],
                                                            repo_type))
            return self._proxy(body)  # read-only POSTs (paths-info) and writes olah refuses with 405
        except HubError as err:
            self._json(err.status, {"error": err.message, **err.extra},
                       {"X-Error-Code": err.code, "X-Error-Message": err.message})

    # -- write API ---------------------------------------------------------------------------------
    def _create_repo(self, payload: dict) -> dict:
        repo_type = payload.get("type") or "model"
        if repo_type not in ("model", "dataset", "space"):
            raise HubError(400, "BadRequest", f"the test write endpoint does not create {repo_type!r} repos")
        if repo_type == "space" and not payload.get("sdk"):
            raise HubError(400, "BadRequest", "a Space needs an sdk (gradio, docker or static)")
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        path = self.server.repo_dir(repo_id, repo_type)
        # the Hub's repo urls: <endpoint>/<repo_id> for models, <endpoint>/<type>s/<repo_id> otherwise
        url = f"{self.server.url}/{_url_prefix(repo_type)}{repo_id}"
        if (path / "HEAD").is_file():
            # the Hub's 409 body carries the url: create_repo(exist_ok=True) returns it
            raise HubError(409, "RepoExists", f"You already created this {repo_type} repo: {repo_id}", url=url)
        init_repo(path)
        commit_files(path, "refs/heads/main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return {"url": url, "name": repo_id}

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        errors = []
        if content.startswith("---"):
            try:
                meta = yaml.safe_load(content.split("---", 2)[1])
                if meta is not None and not isinstance(meta, dict):
                    errors.append({"message": "metadata must be a YAML mapping"})
            except (yaml.YAMLError, IndexError) as err:
                errors.append({"message": f"invalid YAML: {err}"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _create_branch(self, repo_id: str, branch: str, payload: dict, repo_type: str = "model") -> dict:
        repo = self.server.existing_repo(repo_id, repo_type)
        if resolve(repo, f"refs/heads/{branch}"):
            raise HubError(409, "Conflict", f"branch {branch!r} already exists")
        start = resolve(repo, payload.get("startingPoint") or "main")
        if start is None:
            raise HubError(404, "RevisionNotFound", f"starting point {payload.get('startingPoint')!r} not found")
        git(repo, "update-ref", f"refs/heads/{branch}", start)
        return {}

    def _preupload(self, repo_id: str, rev: str, payload: dict, repo_type: str = "model") -> dict:
        repo = self.server.existing_repo(repo_id, repo_type)
        have = resolve(repo, rev)
        files = []
        for f in payload["files"]:
            oid = blob_oid(repo, have, f["path"]) if have else None
            mode = "lfs" if repo_type == "dataset" and f["path"].endswith(".parquet") else "regular"
            files.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return {"files": files}

    def _lfs_batch(self, payload: dict) -> dict:
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "BadRequest", "the test write endpoint only takes 'basic' LFS uploads")
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not (self.server.lfs_objects / obj["oid"]).is_file():  # already stored: nothing to upload
                entry["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def _commit(self, repo_id: str, rev: str, body: bytes, create_pr: bool, repo_type: str = "model") -> dict:
        repo = self.server.existing_repo(repo_id, repo_type)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "BadRequest", "the commit payload must start with a header line")
        header = lines[0]["value"]
        files: dict[str, bytes] = {}
        deletions = []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "BadRequest", f"file {value['path']}: only base64 encoding is supported")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                stored = self.server.lfs_objects / str(value.get("oid"))
                if value.get("algo") != "sha256" or not stored.is_file():
                    raise HubError(400, "BadRequest", f"LFS file {value['path']}: object {value.get('oid')} was "
                                                      "never uploaded")
                files[value["path"]] = stored.read_bytes()
            elif key == "deletedFile":
                deletions.append(value["path"])
            else:
                raise HubError(400, "BadRequest", f"operation {key!r} is not supported by the test write endpoint")
        base = resolve(repo, rev)
        if base is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if header.get("parentCommit") and header["parentCommit"] != base and not create_pr:
            raise HubError(412, "PreconditionFailed",
                           f"parent commit {header['parentCommit']} is not the head of {rev}")
        web = f"{self.server.url}/{_url_prefix(repo_type)}{repo_id}"
        message = header["summary"] + (f"\n\n{header['description']}" if header.get("description") else "")
        pr_url = None
        if create_pr:
            number = 1 + len(git(repo, "for-each-ref", "refs/pr/", "--format=%(refname)").split())
            ref = f"refs/pr/{number}"
            pr_url = f"{web}/discussions/{number}"
        elif rev.startswith("refs/"):
            ref = rev
        elif resolve(repo, f"refs/heads/{rev}"):
            ref = f"refs/heads/{rev}"
        else:
            raise HubError(400, "BadRequest", f"revision {rev!r} is not a branch; commits go to branches or refs/pr/N")
        sha = commit_files(repo, ref, files, message, parent=base, deletions=tuple(deletions))
        return {"commitUrl": f"{web}/commit/{sha}", "commitOid": sha, "pullRequestUrl": pr_url}

    # -- plumbing ------------------------------------------------------------------------------------
    def _pin_slashed_revision(self, path: str) -> str:
        return _pin_slashed_revision_of(self.server, path)

    def _is_missing_entry(self) -> bool:
        """A /<org>/<repo>/resolve/<rev>/<file> request on a repo and revision that exist (so the file is missing)."""
        match = _RESOLVE.match(self.path)
        if not match:
            return False
        repo = self.server.repo_dir(f"{unquote(match[1])}/{unquote(match[2])}")
        return (repo / "HEAD").is_file() and resolve(repo, unquote(match[3])) is not None

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _proxy(self, body: bytes | None = None) -> None:
        """Forward a request to olah and relay status, headers and body unchanged.

        One rewrite: olah's router cannot match a revision holding an encoded slash (refs%2Fpr%2F1, as the
        client sends it), so such a revision is replaced by the commit it names before forwarding.
        Two: dataset info without a revision is asked at main (`_dataset_info_at_main`).
        Three: a file missing from an existing repo and revision is a 404 "EntryNotFound", as on the Hub, where olah
        answers 401 "repository not found" (transformers probes optional files such as processor_config.json and
        takes a 401 for a missing repo).
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = f"127.0.0.1:{self.server.upstream_port}"
        try:
            conn.request(self.command, _dataset_info_at_main(self._pin_slashed_revision(self.path)), body=body,
                         headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status == 401 and self._is_missing_entry():
            self.send_response(404)
            for k, v in (("X-Error-Code", "EntryNotFound"), ("X-Error-Message", "Entry not found"),
                         ("Content-Length", "0")):
                self.send_header(k, v)
            return self.end_headers()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(body))
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


_RESOLVE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/")


def _url_prefix(repo_type: str) -> str:
    return "" if repo_type == "model" else f"{repo_type}s/"


_SLASHED_REV = re.compile(r"^(?:/api/models)?/([^/]+)/([^/]+)/(?:revision|resolve|tree|commits|paths-info)/"
                          r"(refs%2F[^/?]+)")


def _pin_slashed_revision_of(server: WriteEndpoint, path: str) -> str:
    match = _SLASHED_REV.match(path)
    if not match:
        return path
    repo = server.repo_dir(f"{unquote(match[1])}/{unquote(match[2])}")
    sha = resolve(repo, unquote(match[3])) if (repo / "HEAD").is_file() else None
    return path if sha is None else path[: match.start(3)] + sha + path[match.end(3):]


_DATASET_INFO = re.compile(r"^/api/datasets/[^/?]+/[^/?]+(?=\?|$)")


def _dataset_info_at_main(path: str) -> str:
    """/api/datasets/<org>/<repo> (no revision, as `datasets.push_to_hub` asks) -> .../revision/main: the Hub
    answers it with main's info, olah with 401 unless a revision is named."""
    match = _DATASET_INFO.match(path)
    return path if not match else match[0] + "/revision/main" + path[match.end():]


def serve(port: int, mirrors: Path, upstream_port: int) -> WriteEndpoint:
    """Start the endpoint in a daemon thread; call `.shutdown()` to stop it."""
    server = WriteEndpoint(port, mirrors, upstream_port)
    threading.Thread(target=server.serve_forever, name="hub-write-endpoint", daemon=True).start()
    return server
