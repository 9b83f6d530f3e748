"""Comparing checkpoints and samplers, interpolating between prompts, and chaining generation into upscaling."""
import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipelines.api import (
    SampleRequest,
    chain,
    compare,
    compare_samplers,
    comparison_grid,
    interpolate_prompts,
    load,
    sample,
)
from pipelines.sample.chain import post_process, save_chain
from pipelines.sample.images import save_mp4
from pipelines.train.run import train
from tests.conftest import tiny_config

PROMPT, OTHER = "a red circle on a blue background", "a green square on a white background"


@pytest.fixture(scope="module")
def run16(tmp_path_factory):
    row = train(tiny_config(data={"image_size": 16}, training={"epochs": 1}), tmp_path_factory.mktemp("r16"), progress=False)
    return row["folder"]


def test_compare_columns_of_different_resolutions_and_families(trained_run, run16, text_run):
    folders = [trained_run[1] / "final", f"{run16}/final", text_run / "final"]
    columns = compare(folders, SampleRequest(sampler="ddim", steps=4, num=3, seed=5, prompt=PROMPT))  # the prompt goes to the text model only
    assert [c.images.shape for c in columns] == [(3, 8, 8, 1), (3, 16, 16, 1), (3, 16, 16, 3)]
    assert [c.meta["kind"] for c in columns] == ["diffusion", "diffusion", "text-to-image"]
    assert [c.label for c in columns] == ["ddpm-digits-8 / final", "ddpm-digits-16 / final", "t2i / final"]
    assert all(c.seconds > 0 and c.meta["step"] > 0 for c in columns)
    # The same seeds as sampling each alone.
    alone = sample(load(trained_run[1] / "final"), sampler="ddim", steps=4, num=3, seed=5)
    assert np.abs(columns[0].images.astype(int) - alone).max() <= 2

    common, native = comparison_grid(columns, display=64), comparison_grid(columns, display=None)
    assert common.shape[0] > 3 * 64 and native.shape[0] < common.shape[0]
    assert common[-40:, :, :].std() > 5  # images are drawn, not a blank canvas
    with pytest.raises(ValueError, match="prompt"):
        compare([text_run / "final"], SampleRequest(num=1))  # a text model needs a prompt


def test_samplers_and_step_counts_side_by_side(trained_run, tmp_path):
    columns = compare_samplers(trained_run[1] / "final", [("ddim", 4), ("dpm++", 4), ("ddim", 8)], SampleRequest(num=2))
    assert [c.label for c in columns] == ["ddim, 4 steps", "dpm++, 4 steps", "ddim, 8 steps"]
    assert all(c.seconds > 0 and c.images.shape == (2, 8, 8, 1) for c in columns)


def test_prompt_interpolation_ends_at_the_two_prompts(text_run, tmp_path):
    model = load(text_run / "final")
    frames = interpolate_prompts(model, SampleRequest(prompt=PROMPT, seed=3, steps=5, guidance=3.0), OTHER, frames=4)
    assert frames.shape == (4, 16, 16, 3)
    for frame, prompt in ((frames[0], PROMPT), (frames[-1], OTHER)):
        alone = sample(model, sampler="ddim", steps=5, num=1, seed=3, guidance=3.0, prompt=prompt)[0]
        assert np.abs(frame.astype(int) - alone).max() <= 2
    assert np.abs(frames[1].astype(int) - frames[0]).mean() > 0.5  # the middle moves
    with pytest.raises(ValueError, match="prompt_b"):
        interpolate_prompts(model, SampleRequest(prompt=PROMPT), "", frames=2)
    video = imageio.mimread(save_mp4(frames, tmp_path / "walk.mp4", display=64))
    assert len(video) == 4 + 2 and video[0].shape == (64, 64, 3)  # forward then back


def test_chain_generates_then_upscales_twice_with_post_processing(trained_run, sr_model, tmp_path):
    result = chain(trained_run[1] / "final", sr_model, SampleRequest(num=2, seed=1, sampler="ddim", steps=4), passes=2,
                   unsharp=1.0, gamma=1.2)
    assert [im.size for im in result.low] == [(8, 8)] * 2 and result.scale == 4
    assert [im.size for im in result.upscaled] == [(32, 32)] * 2 == [im.size for im in result.bicubic]
    assert set(result.seconds) == {"generate", "upscale", "post-process"} and "twice" in result.upscaler
    assert np.asarray(result.upscaled[0]).std() > 5
    comparison = Image.open(save_chain(result, tmp_path / "out", display=64))
    assert comparison.height == 19 + 2 * 68 + 4 and comparison.width >= 3 * 68 + 4  # a title row, then a row per image
    assert np.asarray(comparison.convert("L"))[-68:].std() > 5  # the last image's row is drawn
    assert sorted(p.name for p in (tmp_path / "out" / "upscaled").iterdir()) == ["000.png", "001.png"]


def test_chain_takes_a_prompt_for_text_models(text_run, sr_model):
    result = chain(text_run / "final", sr_model, SampleRequest(num=1, prompt=PROMPT, steps=3))
    assert result.upscaled[0].size == (32, 32) and result.upscaled[0].mode == "RGB"
    with pytest.raises(ValueError, match="passes"):
        chain(text_run / "final", sr_model, SampleRequest(), passes=3)


def test_post_processing():
    flat = Image.new("L", (8, 8), 64)
    assert np.asarray(post_process(flat, gamma=2.0)).mean() > 64 * 1.5  # gamma above 1 brightens mid-tones
    edge = Image.fromarray(np.repeat([[50] * 4 + [200] * 4], 8, 0).astype(np.uint8))
    blurred = edge.filter(ImageFilter.BLUR)
    sharp = np.asarray(post_process(blurred, unsharp=2.0)).astype(int)
    blurred = np.asarray(blurred).astype(int)
    assert np.abs(np.diff(sharp[4])).max() > np.abs(np.diff(blurred[4])).max()  # steeper edge
