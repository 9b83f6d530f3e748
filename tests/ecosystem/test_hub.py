"""The Hub, against a fake: push uploads the model folder (card included, resumable state left out) and every
failure is one clear line; a Hub id loads through snapshot_download, and a downloaded folder with its card loads."""
import shutil

import httpx
import huggingface_hub
import pytest
from huggingface_hub.errors import HfHubHTTPError

from pipelines import api
from pipelines.cli import main
from pipelines.ecosystem.hub import HubError, push_model


class FakeHub:
    """HfApi's create_repo, create_branch and upload_folder, recording what they were asked; `fail` raises instead."""

    def __init__(self, monkeypatch, fail: Exception | None = None):
        self.calls, self.uploaded, self.fail = [], {}, fail
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake")
        for method in ("create_repo", "create_branch", "upload_folder"):  # as methods of HfApi: (api, ...)
            monkeypatch.setattr(huggingface_hub.HfApi, method, self.method(getattr(self, method)))

    @staticmethod
    def method(fake):
        return lambda api, *args, **kw: fake(api, *args, **kw)

    def create_repo(self, api, repo_id, **kw):
        if self.fail:
            raise self.fail
        self.calls.append(("create_repo", repo_id, kw["private"], kw["exist_ok"], api.token))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, api, repo_id, **kw):
        self.calls.append(("create_branch", repo_id, kw["branch"]))

    def upload_folder(self, api, **kw):
        from fnmatch import fnmatch
        from pathlib import Path

        folder = Path(kw["folder_path"])
        self.calls.append(("upload_folder", kw["repo_id"], kw["revision"]))
        self.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
                         and not any(fnmatch(p.relative_to(folder).as_posix(), pat) or fnmatch(p.name, pat)
                                     for pat in kw["ignore_patterns"])}


def test_push_uploads_the_model_folder(tracked_run, monkeypatch, capsys):
    _, folder, _, _ = tracked_run
    hub = FakeHub(monkeypatch)
    assert push_model(folder / "final", "me/digits", private=True) == "https://huggingface.co/me/digits"
    assert hub.calls[0] == ("create_repo", "me/digits", True, True, "hf_fake")
    assert {"README.md", "samples.png", "model_index.json", "unet/diffusion_pytorch_model.safetensors"} <= set(hub.uploaded)
    # A checkpoint folder: to a branch, without its resumable state; from the command line.
    checkpoint = next(folder.glob("checkpoint-*"))
    assert main(["push", "--checkpoint", str(checkpoint), "--repo", "me/digits", "--revision", "step-10"]) == 0
    assert ("create_branch", "me/digits", "step-10") in hub.calls and ("upload_folder", "me/digits", "step-10") in hub.calls
    assert "training_state.pt" not in hub.uploaded and "studio.json" in hub.uploaded
    assert "uploaded" in capsys.readouterr().out


@pytest.mark.parametrize("fail, words", [
    (HfHubHTTPError("403 Forbidden", response=httpx.Response(403, request=httpx.Request("POST", "https://hub/x"))),
     "no permission to write to me/digits (HTTP 403)"),
    (HfHubHTTPError("409 Conflict", response=httpx.Response(409, request=httpx.Request("POST", "https://hub/x"))),
     "me/digits is taken"),
    (httpx.ConnectError("[Errno 111] Connection refused"), "cannot reach the Hugging Face Hub"),
])
def test_push_failures_are_one_line(tracked_run, monkeypatch, capsys, fail, words):
    _, folder, _, _ = tracked_run
    FakeHub(monkeypatch, fail=fail)
    assert main(["push", "--checkpoint", str(folder / "final"), "--repo", "me/digits"]) == 1
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_push_without_a_token_says_how_to_log_in(tracked_run, monkeypatch):
    _, folder, _, _ = tracked_run
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubError, match="no Hugging Face token: log in with `hf auth login` or set HF_TOKEN"):
        push_model(folder / "final", "me/digits")
    with pytest.raises(HubError, match="must look like USER/NAME"):
        push_model(folder / "final", "not a repo")


def test_a_hub_id_loads_through_snapshot_download(tracked_run, monkeypatch, tmp_path):
    _, folder, _, _ = tracked_run
    downloaded = tmp_path / "snapshot"
    shutil.copytree(folder / "final", downloaded)  # what the Hub holds after a push: card and grid included
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: asked.append(repo_id) or str(downloaded))
    model = api.load("me/digits")
    assert asked == ["me/digits"] and model.path == downloaded
    assert api.sample(model, api.SampleRequest(num=2, steps=2)).shape == (2, 8, 8, 1)


def test_a_hub_id_offline_and_not_cached_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="not in the local cache and cannot be downloaded now"):
        api.load("nobody-here/no-such-model")
