"""`--push_to_hub REPO` of the export and the training: upload a folder to the Hugging Face Hub with
huggingface_hub (https://huggingface.co/docs/huggingface_hub/guides/upload).

`check_push(repo_id)` runs before any work: the repo id must be valid and a token must be there
(`HF_TOKEN` in the environment or in `.env`, or the token file `hf auth login` writes; read by
huggingface_hub.get_token, which calls the Hub only for a CI token exchange (`HF_OIDC_RESOURCE`) or to
refresh a browser-login token), else one DataError line (exit 2), before any network call, with
nothing written. `upload_plan(folder, repo_id, repo_type)` is what would be uploaded:
every plain file under `folder` except dot files and dot folders (`.env`, `.<name>.lock`, the
temporaries `.<name>.<random>.tmp`, `.step_<N>.partial`), `*.lock`, `*.tmp`, `__pycache__`, symbolic
links (they may point anywhere) and the caller's `exclude` patterns, plus the caller's `also` entries
(a local file under another name in the repo). `push(plan, message)` creates the repo (private when it is new;
an existing repo keeps its visibility) and uploads the plan's files in one commit; files already in the
repo that the plan does not hold are left there. Reads `folder`; writes nothing locally.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import NamedTuple

from spt import utils
from spt.utils import DataError, display_path

FLAG = "--push_to_hub"
ALWAYS_EXCLUDED = (".*", "*.lock", "*.tmp", "*.partial", "__pycache__")  # fnmatch patterns on each path part
REPO_URL = {"dataset": "https://huggingface.co/datasets/{}", "model": "https://huggingface.co/{}"}


class UploadPlan(NamedTuple):
    """What `push` uploads: the repo, its type (`dataset` or `model`) and (local file, path in the repo) pairs."""

    repo_id: str
    repo_type: str
    folder: Path
    files: list[tuple[Path, str]]

    def paths_in_repo(self) -> list[str]:
        return [in_repo for _, in_repo in self.files]


def _token() -> str | None:
    from huggingface_hub import get_token

    utils.load_env()
    return get_token()


def check_push(repo_id: str) -> None:
    """A valid repo id and a token, or one line naming what is missing (before any work, no network)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise DataError(f"{FLAG} {repo_id!r}: not a Hub repo id ({str(exc).splitlines()[0]})") from None
    if not _token():
        raise DataError(
            f"{FLAG} {repo_id}: no Hugging Face token; set HF_TOKEN (environment or .env) or run "
            "`hf auth login`, then rerun (nothing was done)"
        )


def _excluded(relative: Path, exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in ALWAYS_EXCLUDED) or any(
        fnmatch.fnmatch(relative.as_posix(), pattern) for pattern in exclude
    )


def upload_plan(
    folder: Path, repo_id: str, repo_type: str, exclude: tuple[str, ...] = (), also: tuple[tuple[Path, str], ...] = ()
) -> UploadPlan:
    """The files of `folder` that `push` would upload to `repo_id` (sorted by path in the repo):
    never secrets, locks, temporaries or links (ALWAYS_EXCLUDED); `exclude`: more fnmatch patterns on
    the path relative to `folder`; `also`: (local file, path in the repo) pairs added."""
    files = []
    for root, _, names in os.walk(folder):  # does not enter linked folders
        for path in (Path(root) / name for name in names):
            relative = path.relative_to(folder)
            if path.is_file() and not path.is_symlink() and not _excluded(relative, exclude):
                files.append((path, relative.as_posix()))
    return UploadPlan(repo_id, repo_type, folder, sorted([*files, *also], key=lambda pair: pair[1]))


def push(plan: UploadPlan, message: str) -> str:
    """Upload `plan` in one commit (creating the repo, private, when it does not exist); returns the
    repo's URL. A failed upload is one DataError line: the local folder is complete either way."""
    from huggingface_hub import CommitOperationAdd, HfApi

    check_push(plan.repo_id)
    api = HfApi(token=_token())
    try:
        api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=True, exist_ok=True)
        api.create_commit(
            plan.repo_id,
            repo_type=plan.repo_type,
            commit_message=message,
            operations=[
                CommitOperationAdd(path_in_repo=in_repo, path_or_fileobj=str(local)) for local, in_repo in plan.files
            ],
        )
    # Every failure at this boundary (refused, unreachable, offline mode, a file unreadable) is one line: the
    # errors come from huggingface_hub and from its HTTP library, whose exception classes differ between versions.
    except Exception as exc:
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        raise DataError(
            f"{FLAG} {plan.repo_id}: the upload of {display_path(plan.folder)} failed "
            f"({reason}); the folder is complete: rerun, or upload it with "
            f"`hf upload {plan.repo_id} {display_path(plan.folder)} --repo-type {plan.repo_type}`"
        ) from None
    return REPO_URL[plan.repo_type].format(plan.repo_id)
