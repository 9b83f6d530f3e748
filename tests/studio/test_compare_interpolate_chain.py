"""The Compare, Interpolate and Chain tabs' endpoints through gradio_client, against `python app.py`."""
import zipfile

import numpy as np
import pytest
from PIL import Image

PROMPT = "a red circle on a blue background"


def test_compare_interpolate_and_chain_endpoints(launch, trained_run, text_run, sr_model):
    from gradio_client.exceptions import AppError

    client = launch().client()
    digits, shapes = str(trained_run[1] / "final"), str(text_run / "final")

    out = client.predict([digits, shapes], PROMPT, "ddim", 4, 0, 2, api_name="/compare")
    assert [c["resolution"] for c in out["columns"]] == ["8px", "16px"]
    assert [c["kind"] for c in out["columns"]] == ["diffusion", "text-to-image"]
    grid = np.asarray(Image.open(out["grid"]).convert("L"))
    assert grid.shape[0] > 2 * 128 and grid.std() > 10
    assert Image.open(out["native_grid"]).height < grid.shape[0]
    with pytest.raises(AppError, match="Pick 2 to 8 checkpoints"):
        client.predict([digits], api_name="/compare")

    walk = client.predict(shapes, "prompts", 0, 1, PROMPT, "a green square on a white background", 3, 5, 3.0, "mp4",
                          api_name="/interpolate")
    assert walk["animation"].endswith(".mp4") and "3 frames" in walk["note"]
    seeds = client.predict(digits, "seeds", 0, 5, "", "", 4, 5, api_name="/interpolate")
    assert Image.open(seeds["animation"]).n_frames == 4 + 2  # forward then back
    with pytest.raises(AppError, match="not a text-to-image model"):
        client.predict(digits, "prompts", 0, 1, "a", "b", api_name="/interpolate")

    made = client.predict(digits, str(sr_model), "", 2, 0, 2, 0.5, 1.2, 4, api_name="/chain")
    assert len(made["upscaled"]) == 2 and Image.open(made["upscaled"][0]).size == (32, 32)
    assert Image.open(made["low"][0]).size == (8, 8) and set(made["seconds"]) == {"generate", "upscale", "post-process"}
    names = zipfile.ZipFile(made["zip"]).namelist()
    assert sorted(names) == sorted(["comparison.png"] + [f"{kind}/{i:03d}.png" for kind in ("low", "bicubic", "upscaled")
                                                         for i in range(2)])
