"""Sharing model folders on the Hugging Face Hub, and loading them back by Hub id.

`push_model` uploads a best/, final/ or checkpoint folder (its model card included; the resumable training state
left out) with huggingface_hub's `create_repo(exist_ok=True)` and `upload_folder`; the token comes from where
huggingface_hub looks (HF_TOKEN, or `hf auth login`). Every failure is a `HubError` whose message is one line a
person can act on. `local_folder` turns a Hub id into a downloaded folder (`snapshot_download`), so every loader
that takes a folder also takes `user/name`.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LEFT_OUT = ["training_state.pt", ".*", "**/.*"]  # resumable state (large, useless to others) and hidden temp files


class HubError(RuntimeError):
    """A push or download that failed; str() is one line saying why and what to do."""


def is_repo_id(text: str) -> bool:
    return bool(REPO_ID.match(text)) and not Path(text).exists()


def local_folder(path: str | Path, revision: str | None = None) -> Path:
    """`path` itself when it is on this machine; a Hub id (user/name) downloaded (or found in the Hub cache)."""
    if Path(path).exists() or not is_repo_id(str(path)):
        return Path(path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    try:
        return Path(snapshot_download(str(path), revision=revision, library_name="pipelines-studio"))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise FileNotFoundError(f"checkpoint: {path} is not a folder here, and the Hub model of that name is not in the "
                                f"local cache and cannot be downloaded now ({type(exc).__name__})") from None
    except HfHubHTTPError as exc:
        raise FileNotFoundError(f"checkpoint: {path} is not a folder here, and the Hub said: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def explain(exc: BaseException, repo: str) -> str:
    """One line for what went wrong talking to the Hub."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    if isinstance(exc, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: unset it to push to the Hub"
    if isinstance(exc, HFValidationError):
        return f"--repo {repo!r} is not a Hub repository name (USER/NAME): {first_line(exc)}"
    if isinstance(exc, RepositoryNotFoundError):
        return (f"{repo} was not found and could not be created: the part before '/' must be your user name or an "
                "organisation you can write to")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            return "the Hub refused the token (HTTP 401): log in again with `hf auth login` or set HF_TOKEN"
        if status == 403:
            return (f"no permission to write to {repo} (HTTP 403): the name belongs to another user or organisation, "
                    "or the token is read-only (make a write token)")
        if status == 409:
            return f"{repo} is taken or conflicts with an existing repository (HTTP 409): pick another name"
        return f"the Hub answered HTTP {status}: {first_line(exc)}"
    if isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore", "requests", "urllib3")):
        return f"cannot reach the Hugging Face Hub ({type(exc).__name__}: {first_line(exc)}): check the network"
    return f"{type(exc).__name__}: {first_line(exc)}"


def check_folder(checkpoint: Path) -> None:
    from ..families import family_of

    if not checkpoint.is_dir():
        raise HubError(f"--checkpoint {checkpoint} is not a folder")
    if family_of(checkpoint) is None:
        raise HubError(f"--checkpoint {checkpoint} holds no model this studio wrote or loads (a run's best/, final/ "
                       "or checkpoint-<step>/, or a diffusers folder)")


def push_model(checkpoint: str | Path, repo: str, private: bool = False, revision: str | None = None,
               token: str | None = None) -> str:
    """Upload a model folder to the Hub repository `repo` (created if needed; `revision`: a branch, created from
    main if needed). Returns the URL of the uploaded revision. Raises HubError with a one-line reason."""
    from huggingface_hub import HfApi, get_token

    checkpoint = Path(checkpoint)
    check_folder(checkpoint)
    if not REPO_ID.match(repo):
        raise HubError(f"--repo {repo!r} must look like USER/NAME (letters, digits, '-', '_', '.')")
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN (a token with write access)")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo, branch=revision, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo, folder_path=str(checkpoint), repo_type="model", revision=revision,
                          ignore_patterns=LEFT_OUT, commit_message=f"Upload {checkpoint.name}/ from pipelines studio")
    except HubError:
        raise
    except Exception as exc:
        raise HubError(explain(exc, repo)) from exc
    base = str(url).rstrip("/")
    return f"{base}/tree/{revision}" if revision else base
