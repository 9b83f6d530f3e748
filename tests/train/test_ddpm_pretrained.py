"""Fine-tuning a published diffusers DDPM pipeline (full and LoRA), and growing a run to a larger size."""
import json

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from pipelines.config import validate_config
from pipelines.sample.models import load_model, sample_model
from pipelines.train.run import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny DDPMPipeline as the published ones are: linear betas, epsilon prediction, clipped samples, 8 px grey."""
    folder = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(4, 8), layers_per_block=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, attention_head_dim=4)
    scheduler = DDPMScheduler(num_train_timesteps=200, beta_schedule="linear", prediction_type="epsilon",
                              variance_type="fixed_large", clip_sample=True)
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)
    return folder


def fine_tune(tmp_path, published, name, **model):
    cfg = tiny_config(model={"pretrained": str(published), **model},
                      diffusion={"beta_schedule": "cosine", "prediction": "v", "num_train_timesteps": 1000},
                      training={"epochs": 2, "learning_rate": 1e-2, "ema_decay": 0.0})
    row = train(cfg, tmp_path, name=name, progress=False)
    assert row["status"] == "completed", row.get("error")
    return tmp_path / name


def predict(unet):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8, 8, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([10, 150])).sample


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_a_published_pipeline_fine_tunes_keeping_its_schedule_and_stock_diffusers_loads_it(tmp_path, published, lora_rank):
    folder = fine_tune(tmp_path, published, f"tuned-{lora_rank}", lora_rank=lora_rank)
    final = folder / "final"
    kept = json.loads((final / "scheduler" / "scheduler_config.json").read_text())
    source = json.loads((published / "scheduler" / "scheduler_config.json").read_text())
    for key in ("beta_schedule", "prediction_type", "num_train_timesteps", "variance_type", "clip_sample"):
        assert kept[key] == source[key], key  # the published schedule, not the form's cosine / v / 1000
    log = (folder / "log.txt").read_text()  # and the log says the form's schedule was overridden
    assert "keeping" in log and "linear betas over 200 steps, epsilon prediction" in log and "(cosine, v prediction, 1000 steps)" in log

    # Stock diffusers: the folder is a plain DDPMPipeline (a LoRA run's adapters are merged in), and it learned.
    pipe = DDPMPipeline.from_pretrained(final)
    assert not any("lora" in k for k in pipe.unet.state_dict())
    base = UNet2DModel.from_pretrained(published / "unet")
    assert (predict(pipe.unet) - predict(base)).abs().mean() > 1e-4
    images = pipe(batch_size=2, num_inference_steps=10, output_type="np", generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 8, 8, 1) and images.std() > 0.01

    # The studio samples it (Generate, Compare, Interpolate and Chain load folders this way).
    model = load_model(final)
    assert sample_model(model, sampler="ddim", steps=4, num=2).shape == (2, 8, 8, 1)


def test_lora_trains_only_the_adapters(tmp_path, published):
    from pipelines.families.ddpm.pretrained import add_unet_lora, merged_unet

    unet = add_unet_lora(UNet2DModel.from_pretrained(published / "unet"), rank=2)
    trainable = [n for n, p in unet.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("to_q" in n for n in trainable) and any("conv1" in n for n in trainable)
    assert torch.allclose(predict(merged_unet(unet)), predict(UNet2DModel.from_pretrained(published / "unet")), atol=1e-6)


def test_a_published_pipeline_loads_as_it_is_in_the_use_tabs(published):
    model = load_model(published)
    assert model.scheduler.config.prediction_type == "epsilon" and model.image_size == 8
    images = sample_model(model, sampler="dpm++", steps=3, num=2)
    assert images.shape == (2, 8, 8, 1)


def test_a_flat_published_folder_with_bin_weights_loads(tmp_path, published):
    """The first published pipelines (google/ddpm-*) hold config.json, scheduler_config.json and a .bin at the top."""
    flat = tmp_path / "flat"
    UNet2DModel.from_pretrained(published / "unet").save_pretrained(flat, safe_serialization=False)
    DDPMScheduler.from_pretrained(published / "scheduler").save_pretrained(flat)
    model = load_model(flat)
    assert model.scheduler.config.beta_schedule == "linear"
    assert sample_model(model, sampler="ddim", steps=2, num=1).shape == (1, 8, 8, 1)


def test_size_and_channel_mismatches_are_refused_naming_both(tmp_path, published):
    with pytest.raises(ValueError, match=r"data.channels 3 does not fit model.pretrained .*takes 1 channels"):
        train(tiny_config(data={"channels": 3}, model={"pretrained": str(published)}), tmp_path, name="c", progress=False)
    with pytest.raises(ValueError, match=r"data.image_size 9 does not fit model.pretrained .*trained at 8 px.*multiples of 2"):
        train(tiny_config(data={"image_size": 9}, model={"pretrained": str(published)}), tmp_path, name="s", progress=False)
    with pytest.raises(ValueError, match="model.pretrained: .* no diffusers UNet2DModel"):
        train(tiny_config(model={"pretrained": str(tmp_path)}), tmp_path, name="e", progress=False)
    with pytest.raises(ValueError, match="model.lora_rank"):
        validate_config({"family": "ddpm", "model": {"lora_rank": 4}})


def test_a_hub_id_offline_and_not_cached_is_one_line_naming_the_field(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="model.pretrained: nobody-here/no-ddpm .*not in the local cache") as err:
        train(tiny_config(model={"pretrained": "nobody-here/no-ddpm"}), tmp_path, name="h", progress=False)
    assert "\n" not in str(err.value)


def test_a_16px_run_grows_to_32px_and_trains(tmp_path):
    small = tiny_config(data={"image_size": 16, "num_samples": 64}, training={"epochs": 2, "learning_rate": 3e-3})
    assert train(small, tmp_path, name="small", progress=False)["status"] == "completed"
    grown_cfg = tiny_config(data={"image_size": 32, "num_samples": 64}, model={"pretrained": str(tmp_path / "small" / "best")},
                            training={"epochs": 2, "learning_rate": 3e-3})
    row = train(grown_cfg, tmp_path, name="grown", progress=False)
    assert row["status"] == "completed"
    assert "trained at 16 px; it continues at 32 px" in (tmp_path / "grown" / "log.txt").read_text()
    model = load_model(tmp_path / "grown" / "final")
    assert model.image_size == 32
    images = sample_model(model, sampler="ddim", steps=4, num=2)
    assert images.shape == (2, 32, 32, 1) and images.std() > 1
    small_weights = UNet2DModel.from_pretrained(tmp_path / "small" / "best" / "unet").state_dict()
    grown_weights = model.unet.state_dict()
    assert small_weights.keys() == grown_weights.keys()  # the same network, trained further
