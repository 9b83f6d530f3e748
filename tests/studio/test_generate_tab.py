import threading

import numpy as np
import pytest

from pipelines.sample.diffusion import Cancelled
from pipelines.api import SampleRequest
from studio.generation import CancelFlags, run_generation


def test_generation_reports_steps_and_time(trained_run):
    steps = []
    pictures, took = run_generation(str(trained_run[1] / "final"), SampleRequest(sampler="ddim", steps=4, seed=5, num=3), on_step=lambda i: steps.append(i["step"]))
    assert len(pictures) == 3 and pictures[0].size == (8, 8) and np.asarray(pictures[0]).std() > 5
    assert steps == [1, 2, 3, 4] and "3 images of 8x8" in took and "seeds 5–7" in took


def test_cancel_stops_between_steps(trained_run):
    flags = CancelFlags()
    flag = flags.fresh("session-a")
    seen = []

    def on_step(info):
        seen.append(info["step"])
        if info["step"] == 2:
            flags.cancel("session-a")

    with pytest.raises(Cancelled):
        run_generation(str(trained_run[1] / "final"), SampleRequest(sampler="ddim", steps=50, seed=0, num=4), on_step=on_step, cancelled=flag)
    assert seen == [1, 2]
    flags.cancel("another-session")  # unknown sessions are ignored
    assert isinstance(flags.fresh("session-a"), threading.Event) and not flags.flags["session-a"].is_set()


def test_a_missing_checkpoint_is_a_clear_error(tmp_path):
    import gradio as gr

    with pytest.raises(gr.Error, match="is not a folder"):
        run_generation(str(tmp_path / "nope"), SampleRequest(sampler="ddim", steps=4, seed=0, num=1))
    with pytest.raises(gr.Error, match="Pick a checkpoint"):
        run_generation("", SampleRequest(sampler="ddim", steps=4, seed=0, num=1))


def test_interpolation_writes_a_strip_a_gif_and_an_mp4(trained_run, tmp_path):
    from PIL import Image

    from studio.tabs.interpolate import SEEDS, run_interpolation

    asked = SampleRequest.of(seed=0, prompt="", steps=10, class_label=-1, guidance=1.0, truncation=0.0)
    result = run_interpolation(str(trained_run[1] / "final"), SEEDS, asked, 3, "", 5, "MP4", tmp_path)
    assert "5 frames, seed 0 → 3" in result["note"]
    assert Image.open(result["gif"]).n_frames == 8  # forward and back
    assert Image.open(result["strip"]).width > 5 * 64
    assert result["download"] == result["mp4"] and result["mp4"].endswith(".mp4")
