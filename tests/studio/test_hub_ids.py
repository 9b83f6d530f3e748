"""The use tabs take a Hub id typed where a folder path goes (a published diffusers pipeline, loaded as it is), and
say in one line when it cannot be had offline; the Runs tab says what a run started from."""
import gradio as gr
import huggingface_hub
import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from pipelines.api import SampleRequest
from pipelines.store import RunStore
from studio import views
from studio.choices import still_there
from studio.generation import run_generation
from studio.tabs.chain import run_chain
from studio.tabs.compare import run_compare
from studio.tabs.interpolate import SEEDS, run_interpolation

HUB_ID = "someone/ddpm-tiny"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """What snapshot_download gives for a published DDPMPipeline: model_index.json, unet/ and scheduler/."""
    folder = tmp_path_factory.mktemp("hub") / "snapshot"
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(4, 8), layers_per_block=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, attention_head_dim=4)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100, beta_schedule="linear")).save_pretrained(folder)
    return folder


@pytest.fixture
def hub(monkeypatch, published):
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: asked.append(repo_id) or str(published))
    return asked


def test_generate_interpolate_compare_and_chain_take_a_hub_id(hub, trained_run, sr_model, tmp_path):
    pictures, took = run_generation(HUB_ID, SampleRequest(sampler="ddim", steps=3, seed=0, num=2))
    assert len(pictures) == 2 and pictures[0].size == (8, 8) and "2 images of 8x8" in took
    asked = SampleRequest.of(seed=0, prompt="", steps=3, class_label=-1, guidance=1.0, truncation=0.0)
    strip = run_interpolation(HUB_ID, SEEDS, asked, 1, "", 3, "GIF", tmp_path / "interpolation")
    assert "3 frames" in strip["note"]
    compared = run_compare([HUB_ID, str(trained_run[1] / "final")], SampleRequest(sampler="ddim", steps=3, num=1),
                           RunStore(tmp_path / "ws"), tmp_path / "compare")
    assert [c["checkpoint"] for c in compared["columns"]][0] == "ddpm-tiny"
    chained = run_chain(HUB_ID, str(sr_model), SampleRequest(sampler="ddim", steps=3, num=1), 1, 0.0, 1.0, tmp_path / "chain")
    assert "8px → 16px" in chained["note"]
    assert set(hub) == {HUB_ID}
    assert still_there(HUB_ID, set())  # a typed Hub id stays in the list's box when the list refreshes


def test_a_hub_id_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(gr.Error) as err:
        run_generation("nobody-here/no-such-ddpm", SampleRequest(sampler="ddim", steps=3, num=1))
    message = str(err.value.message)
    assert "nobody-here/no-such-ddpm" in message and "not in the local cache and cannot be downloaded now" in message
    assert "\n" not in message
    with pytest.raises(gr.Error, match="cannot be downloaded now"):
        run_interpolation("nobody-here/no-such-ddpm", SEEDS, SampleRequest(steps=3), 1, "", 3, "GIF", None)


def test_the_runs_tab_says_what_a_run_started_from(trained_run):
    final = trained_run[1] / "final"
    grown = views.started_from({"config": f"model:\n  pretrained: {final}\n"})
    assert grown == f"grew from run {trained_run[1].name} (final/, 8 px)"
    assert views.started_from({"config": "model:\n  pretrained: google/ddpm-cifar10-32\n"}) == "fine-tunes google/ddpm-cifar10-32"
    assert views.started_from({"config": "model:\n  base_channels: 32\n"}) == ""
