"""Where a model id comes from: a local folder, the Hugging Face Hub, or medhub's local zoo.

Resolution order for `name_or_path`:
1. an existing local folder;
2. the Hub through the real `huggingface_hub` client (honours HF_ENDPOINT, HF_HOME, the cache,
   HF_HUB_OFFLINE and revisions); offline, or when the endpoint does not answer, the local cache;
3. for ids under `medhub/` only, and only when no specific revision was asked for: the local zoo
   (see `medhub.zoo.local`), the embedded default that works offline in a checkout.
One log line says which source served the model; an id found nowhere raises `ModelNotFoundError`
listing every source tried and why it failed. A pickle-only repo or folder raises `PickleWeightsError`
before anything is downloaded or unpickled; a corrupt safetensors file raises `CorruptWeightsError`.

HF-compatible mirrors differ from the Hub in small ways handled here: olah answers 401 "repository not
found" to /api/models/<repo> without a revision (so a revision is always named) and for a missing
revision (so we ask about main to tell the two apart).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import HubError, ModelNotFoundError, PickleWeightsError
from .logging_utils import get_logger
from .weights_files import (
    CONFIG_NAME,
    PICKLE_SUFFIXES,
    WEIGHTS_INDEX_NAME,
    check_model_folder,
    pickle_message,
)
from .zoo.catalog import ORG as ZOO_ORG
from .zoo.local import find as find_in_zoo

logger = get_logger("hub")

PROCESSOR_NAME = "preprocessor_config.json"
CARD_NAME = "README.md"
MODEL_FILES = [CONFIG_NAME, "*.safetensors", WEIGHTS_INDEX_NAME, PROCESSOR_NAME, CARD_NAME]


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # local folder holding config.json and the safetensors weights
    source: str  # "local folder", "Hugging Face Hub (<endpoint>[, offline: local cache])" or "medhub zoo (<dir>)"
    repo_id: str | None = None
    revision: str | None = None
    # Weight files whose check (framing, NaN/Inf) resolve_model left to the loader (`defer_check`).
    unchecked: tuple[Path, ...] = ()


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def resolve_model(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    *,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    need_weights: bool = True,
    defer_check: tuple[str, ...] = (),
) -> ResolvedModel:
    """Find a model folder for `name_or_path` (see the module docstring for the order).

    defer_check: names of weight files (e.g. "model.safetensors") whose check the caller makes as it reads them
    (`medhub.weights_files.read_checked_safetensors`), so that a load reads and checks each file once; they are
    listed in `ResolvedModel.unchecked`. Every other check is made here."""
    tried: list[str] = []
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        unchecked = check_model_folder(path, need_weights=need_weights, defer=defer_check)
        logger.info("loading %s from local folder %s", name_or_path, path.resolve())
        return ResolvedModel(path, "local folder", unchecked=tuple(unchecked))
    tried.append(f"local folder {path}: does not exist")

    repo_id = str(name_or_path)
    if _looks_like_repo_id(repo_id):
        try:
            folder, how, unchecked = _download_from_hub(repo_id, revision, token, cache_dir, local_files_only,
                                                        need_weights, defer_check)
            source = f"Hugging Face Hub ({endpoint()}{how})"
            logger.info("loading %s (revision %s) from the %s", repo_id, revision or "main", source)
            return ResolvedModel(folder, source, repo_id, revision, tuple(unchecked))
        except _HubMiss as miss:
            tried.append(f"Hugging Face Hub {endpoint()}: {miss}")

        if repo_id.startswith(f"{ZOO_ORG}/") and revision in (None, "main"):
            folder, why = find_in_zoo(repo_id.split("/", 1)[1])
            if folder is not None:
                unchecked = check_model_folder(folder, need_weights=need_weights, defer=defer_check)
                logger.info("loading %s from the local medhub zoo %s (the Hub had no copy: %s)", repo_id, folder,
                            tried[-1].split(": ", 1)[1])
                return ResolvedModel(folder, f"medhub zoo ({folder})", repo_id, None, tuple(unchecked))
            tried.append(f"medhub zoo: {why}")
        elif repo_id.startswith(f"{ZOO_ORG}/"):
            tried.append(f"medhub zoo: not consulted, revision {revision!r} was asked for and the zoo has no revisions")
        else:
            tried.append(f"medhub zoo: not consulted, it only holds ids under {ZOO_ORG}/")
    else:
        tried.append(f"Hugging Face Hub: {repo_id!r} is not a valid repo id ('org/name')")
    raise ModelNotFoundError(f"model {str(name_or_path)!r} was not found. Sources tried:\n  - " + "\n  - ".join(tried))


class _HubMiss(Exception):
    """The Hub did not give us the repo (absent, unreachable, offline); another source may."""


def _looks_like_repo_id(name: str) -> bool:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except Exception:
        return False
    return True


def _download_from_hub(repo_id, revision, token, cache_dir, local_files_only, need_weights,
                       defer_check=()) -> tuple[Path, str, list[Path]]:
    """Download (or find in the cache) the model files of `repo_id`; return (folder, how it was served, the files
    whose check was deferred: see `resolve_model`).

    Online, the repo's file list is checked first so that a pickle-only repo is refused before any download.
    When the endpoint cannot be reached, the local cache answers if it has the revision (as the
    huggingface_hub client does), otherwise the caller moves on to the next source.
    """
    from huggingface_hub import constants

    offline = local_files_only or constants.HF_HUB_OFFLINE
    rev = revision or "main"
    patterns = MODEL_FILES if need_weights else [CONFIG_NAME, PROCESSOR_NAME]
    if offline:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "local_files_only=True"
        folder, unchecked = _from_cache(repo_id, rev, token, cache_dir, patterns, need_weights, why, defer_check)
        return folder, ", offline: local cache", unchecked
    try:
        names = _list_repo_files(repo_id, rev, token)
    except _Unreachable as err:
        folder, unchecked = _from_cache(repo_id, rev, token, cache_dir, patterns, need_weights,
                                        f"unreachable ({err})", defer_check)
        logger.warning("the Hub at %s is unreachable (%s); using the cached copy of %s", endpoint(), err, repo_id)
        return folder, ", unreachable: local cache", unchecked
    if need_weights and not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise PickleWeightsError(pickle_message(f"Hub repo {repo_id}@{rev}", pickles))
    if CONFIG_NAME not in names:
        raise _HubMiss(f"repo {repo_id}@{rev} has no {CONFIG_NAME} (files: {names[:10]})")
    folder = _snapshot(repo_id, rev, token, cache_dir, patterns, local_files_only=False)
    return folder, "", check_model_folder(folder, need_weights=need_weights, defer=defer_check)


class _Unreachable(Exception):
    """The endpoint did not answer at all (connection refused, DNS failure, timeout)."""


def _list_repo_files(repo_id: str, rev: str, token) -> list[str]:
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors

    api = HfApi(token=token)
    try:
        # Always name a revision: some HF-compatible mirrors (olah) answer 401 to /api/models/<repo> without one.
        info = api.model_info(repo_id, revision=rev)
    except hf_errors.RevisionNotFoundError as err:
        raise _HubMiss(f"revision {rev!r} not found ({_short(err)})") from err
    except (hf_errors.RepositoryNotFoundError, hf_errors.GatedRepoError) as err:
        # Mirrors such as olah answer "repository not found" for a missing revision too: ask about main to tell.
        if rev != "main" and _repo_exists(api, repo_id):
            raise _HubMiss(f"revision {rev!r} not found (the repo exists)") from err
        raise _HubMiss(f"repository not found or not accessible ({_short(err)})") from err
    except hf_errors.HfHubHTTPError as err:
        raise _HubMiss(f"HTTP error {_short(err)}") from err
    except Exception as err:  # connection refused, DNS failure, timeouts
        raise _Unreachable(f"{type(err).__name__}: {_short(err)}") from err
    return [s.rfilename for s in (info.siblings or [])]


def _repo_exists(api, repo_id: str) -> bool:
    try:
        api.model_info(repo_id, revision="main")
    except Exception:
        return False
    return True


def _from_cache(repo_id, rev, token, cache_dir, patterns, need_weights, why: str,
                defer_check=()) -> tuple[Path, list[Path]]:
    try:
        folder = _snapshot(repo_id, rev, token, cache_dir, patterns, local_files_only=True)
        unchecked = check_model_folder(folder, need_weights=need_weights, defer=defer_check)
    except _HubMiss as miss:
        raise _HubMiss(f"{why}, and {miss}") from None
    except ModelNotFoundError as err:  # e.g. only config.json was cached (by MedConfig.from_pretrained)
        raise _HubMiss(f"{why}, and the cached copy is incomplete ({err})") from None
    return folder, unchecked


def _snapshot(repo_id, rev, token, cache_dir, patterns, local_files_only: bool) -> Path:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            revision=rev,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            allow_patterns=patterns,
            library_name="medhub",
        )
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as err:
        raise _HubMiss(f"revision {rev!r} is not in the local cache ({_short(err, 120)})") from err
    except hf_errors.HfHubHTTPError as err:
        raise _HubMiss(f"HTTP error while downloading ({_short(err)})") from err
    except Exception as err:
        raise _HubMiss(f"download failed ({type(err).__name__}: {_short(err)})") from err
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise _HubMiss(f"no {CONFIG_NAME} in the snapshot {folder}")
    return folder


def _short(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def upload_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Upload every file of `folder` to `repo_id` in exactly one commit; return the `CommitInfo`.

    Uses `create_commit` rather than `HfApi.upload_folder`, which may split an upload into several commits
    and refuses `create_pr` together with a branch. The repo is created when missing; a `revision` branch is
    created from main when missing, except with `create_pr=True`, where the pull request (refs/pr/N) is
    opened against `revision` (default main).
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub import errors as hf_errors

    folder = Path(folder)
    operations = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p))
                  for p in sorted(folder.iterdir()) if p.is_file()]
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision not in (None, "main") and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.create_commit(
            repo_id=repo_id,
            operations=operations,
            commit_message=commit_message or "Upload medhub model",
            revision=revision,
            create_pr=create_pr,
        )
    except hf_errors.HfHubHTTPError as err:
        raise HubError(f"push of {folder} to {repo_id} at {endpoint()} failed: {_short(err, 400)}") from err
