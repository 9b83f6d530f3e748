"""Requests from outside, against `python app.py`: a foreign Host header (DNS rebinding) is refused, numbers are
checked as the command line checks them, and results are files a client elsewhere downloads over HTTP."""
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from studio.hosts import allowed_hosts
from tests.studio.conftest import sequential_client, tiny_yaml


def test_a_foreign_host_header_is_refused_and_the_app_s_own_names_answer(launch):
    app = launch()
    foreign = {"Host": "attacker.example"}
    page = httpx.get(app.url, headers=foreign)
    assert page.status_code == 421 and "answers only 127.0.0.1" in page.text
    start = httpx.post(app.url + "gradio_api/run/start", json={"data": [tiny_yaml()]}, headers=foreign)
    assert start.status_code == 421
    for name in ("127.0.0.1", "localhost"):
        runs = httpx.post(f"http://{name}:{app.port}/gradio_api/run/list_runs", json={"data": []})
        assert runs.status_code == 200 and runs.json()["data"] == [[]]  # and the foreign /start made no run
    assert app.client().predict(api_name="/list_runs") == []


def test_the_names_answered():
    assert allowed_hosts("127.0.0.1", 7860) == {"127.0.0.1:7860", "localhost:7860", "[::1]:7860"}
    assert "192.168.1.5:7860" in allowed_hosts("192.168.1.5", 7860)
    assert allowed_hosts("0.0.0.0", 7860) is None  # every address: the login guards it (--auth is required)


def test_numbers_are_checked_and_results_download_from_elsewhere(launch, trained_run, sr_model, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    app = launch()
    client = sequential_client(app.url, download_files=False)  # as a client with no view of the server's disk
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(photo)

    with pytest.raises(AppError, match=r"tile: must be 0 \(the whole image at once\) or at least 8, got -5"):
        client.predict([handle_file(str(photo))], str(sr_model), 0, -5, 16, api_name="/upscale")
    with pytest.raises(AppError, match="steps: must be at least 1 and at most 1000, got 0"):
        client.predict(str(trained_run[1] / "final"), "ddim", 0, 0, 2, api_name="/generate")
    exports = app.workspace / "exports"
    assert not any(p.is_file() for p in exports.rglob("*"))  # nothing was made

    result = client.predict([handle_file(str(photo))], str(sr_model), 0, 16, 4, api_name="/upscale")
    upscaled = fetch(result["outputs"][0]["url"])
    assert upscaled.size == (60, 40) and np.asarray(upscaled).std() > 10
    files, took = client.predict(str(trained_run[1] / "final"), "ddim", 4, 0, 2, api_name="/generate")
    assert len(files) == 2 and "2 images of 8x8" in took
    assert np.asarray(fetch(files[0]["url"])).std() > 5


def fetch(url: str) -> Image.Image:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return Image.open(io.BytesIO(response.content))


def test_the_file_route_serves_no_file_of_the_workspace_and_the_store_outlives_the_attempts(launch, tmp_path):
    """Probe: one GET of /gradio_api/file=<workspace>/runs.sqlite during a run made every later store read fail
    ("database disk image is malformed") until a restart, and config.yaml (webhook tokens) was served too."""
    from pipelines.store import RunStore
    from tests.studio.conftest import wait_for, wait_for_status

    app = launch()
    client = app.client()
    name = client.predict(tiny_yaml(epochs=5000, checkpoint_every_epochs=1), api_name="/start")["name"]
    store = RunStore(app.workspace)

    def checkpointed():
        row = store.get_run(name)
        assert row["status"] in ("queued", "running"), row["error"]
        return next(Path(row["folder"]).glob("checkpoint-*/*.json"), None) if row["step"] else None

    checkpoint_file = wait_for(checkpointed, what="a checkpoint")
    folder = checkpoint_file.parent.parent
    link = tmp_path / "innocent.png"
    link.symlink_to(app.workspace / "runs.sqlite")
    for path in (app.workspace / "runs.sqlite", app.workspace / "runs.sqlite-wal", folder / "config.yaml",
                 folder / "log.txt", checkpoint_file, link):
        for route in ("gradio_api/file=", "file="):
            answer = httpx.get(f"{app.url}{route}{path}")
            assert answer.status_code in (403, 404), f"{route}{path}: {answer.status_code}"
            assert b"SQLite format" not in answer.content and b"family:" not in answer.content

    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="the run store is not an image or a model; refused"):  # nor opened as one
        client.predict([str(app.workspace / "runs.sqlite")], str(folder), 0, 16, 4, api_name="/upscale")

    client.predict(name, api_name="/stop")
    wait_for_status(lambda: store.get_run(name), "stopped")
    for _ in range(20):  # the app's own reads of the store still work after the run ended
        answer = httpx.post(f"{app.url}gradio_api/run/list_runs", json={"data": []})
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["data"][0] if r["name"] == name] == ["stopped"]
    assert len(client.predict(name, -1, api_name="/run_metrics")["loss"]) >= 1


def test_the_app_starts_when_its_page_answers_late(launch, tmp_path, monkeypatch):
    """Probe: at load 9-13 `python app.py` exited, 5 times of 5, with "When localhost is not accessible, a shareable
    link must be created": Gradio's start-up check gives the page one HEAD request of 3 s. Here every HEAD the app
    process sends times out, as on a machine busy training (no load is made, nothing is timed)."""
    late = tmp_path / "late"
    late.mkdir()
    (late / "sitecustomize.py").write_text(
        "import httpx\n\n"
        "def head(*args, **kwargs):\n"
        "    raise httpx.ReadTimeout('the page answered late: the machine is busy')\n\n"
        "httpx.head = head\n")
    monkeypatch.setenv("PYTHONPATH", str(late))
    app = launch()
    assert app.proc.poll() is None and httpx.get(app.url, timeout=60).status_code == 200
    assert app.client().predict(api_name="/list_runs") == []
