"""Requests from outside, against `python app.py`: a foreign Host header (DNS rebinding) is refused, numbers are
checked as the command line checks them, and results are files a client elsewhere downloads over HTTP."""
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from studio.hosts import allowed_hosts
from tests.studio.conftest import tiny_yaml


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
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    app = launch()
    client = Client(app.url, verbose=False, download_files=False)  # as a client with no view of the server's disk
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
