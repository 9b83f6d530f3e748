"""Text-to-image latent diffusion through a tiny saved AutoencoderKL, and LoRA fine-tuning of a saved UNet."""
import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file

from pipelines.checkpoints import load_training_state
from pipelines.config import validate_config
from pipelines.families.t2i import latent
from pipelines.models.unet import build_text_unet
from pipelines.sample.models import load_model, sample_model
from pipelines.train.run import train
from tests.train.test_t2i import tiny_t2i
from tests.train.test_training import StopAt

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """A two-level AutoencoderKL (16 px images -> 4 x 8 x 8 latents), saved as a diffusers folder."""
    folder = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8, layers_per_block=1,
                  sample_size=16).save_pretrained(folder)
    return folder


def test_latent_diffusion_caches_latents_and_saves_a_loadable_vae(tmp_path, tiny_vae, monkeypatch):
    encoded = []
    encode = latent.encode
    monkeypatch.setattr(latent, "encode", lambda vae, images, **kw: encoded.append(len(images)) or encode(vae, images, **kw))
    cfg = tiny_t2i(data={"random_flip": True}, latent={"vae": str(tiny_vae), "tiling": True},
                   model={"cross_attention_resolutions": [4]})
    assert train(cfg, tmp_path, name="a", progress=False)["status"] == "completed"
    train(cfg, tmp_path, name="b", progress=False)
    cached = list((tmp_path / "cache" / "latents").rglob("complete"))
    assert len(cached) == 1 and len(encoded) == 2  # the images and their mirrors, once, for both runs
    assert np.load(cached[0].parent / "mean.npy", mmap_mode="r").shape[1:] == (2, 4, 8, 8)

    final = tmp_path / "a" / "final"
    assert AutoencoderKL.from_pretrained(final / "vae").config.latent_channels == 4  # stock diffusers loads it
    assert UNet2DConditionModel.from_pretrained(final / "unet").config.sample_size == 8  # the UNet works on latents
    model = load_model(final)
    assert (model.image_size, model.channels, model.noise_shape) == (16, 3, (4, 8, 8))
    images = sample_model(model, sampler="ddim", steps=4, num=2, seed=0, guidance=3.0, prompt=PROMPT)
    assert images.shape == (2, 16, 16, 3) and images.std() > 1


def test_latent_geometry_errors_name_the_field(tmp_path, tiny_vae):
    cfg = tiny_t2i(latent={"vae": str(tiny_vae)}, model={"cross_attention_resolutions": [16]})  # 16 px images, 8 x 8 latents
    with pytest.raises(ValueError, match="model.cross_attention_resolutions"):
        train(cfg, tmp_path, name="a", progress=False)
    with pytest.raises(ValueError, match="latent.vae"):
        train(tiny_t2i(latent={"vae": str(tmp_path / "missing")}), tmp_path, name="b", progress=False)
    with pytest.raises(ValueError, match="data.channels"):
        validate_config({"family": "t2i", "data": {"channels": 1}, "latent": {"vae": "x"}})


@pytest.fixture(scope="module")
def base_unet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    model = tiny_t2i().model.model_copy(update={"cross_attention_resolutions": [16]})
    torch.manual_seed(1)
    build_text_unet(model, 32, 3, 384).save_pretrained(folder / "unet")  # made at 32 px; the tests fine-tune at 16
    return folder


def predict(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, text = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 5, 384, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([10, 50]), encoder_hidden_states=text).sample


def test_lora_round_trip_through_stock_diffusers(tmp_path, base_unet):
    cfg = tiny_t2i(model={"pretrained": str(base_unet), "lora_rank": 4},
                   training={"learning_rate": 1e-2, "ema_decay": 0.0})
    assert train(cfg, tmp_path, name="lora", progress=False)["status"] == "completed"
    final = tmp_path / "lora" / "final"
    assert not (final / "unet").exists()
    adapters = load_file(final / "unet_lora" / "pytorch_lora_weights.safetensors")
    assert adapters and all("lora" in k for k in adapters)

    # Stock diffusers: the base UNet plus the saved adapters predicts as the trained model does.
    stock = UNet2DConditionModel.from_pretrained(base_unet / "unet")
    before = predict(stock)
    stock.load_lora_adapter(str(final / "unet_lora"), prefix=None, weight_name="pytorch_lora_weights.safetensors")
    loaded = load_model(final)
    assert loaded.image_size == 16  # the size it was fine-tuned at, not the base's 32
    trained = loaded.unet
    assert torch.allclose(predict(stock), predict(trained), atol=1e-5)
    assert (predict(stock) - before).abs().mean() > 1e-4  # the adapters learned something
    trained_weights = trained.state_dict()
    for key, value in UNet2DConditionModel.from_pretrained(base_unet / "unet").state_dict().items():  # the base is untouched
        wrapped = key.rsplit(".", 1)[0] + ".base_layer." + key.rsplit(".", 1)[1]  # peft's name for an adapted layer
        assert torch.equal(value, trained_weights.get(wrapped, trained_weights.get(key))), key

    checkpoint = sorted((tmp_path / "lora").glob("checkpoint-*"))[-1]
    state = load_training_state(checkpoint)["family"]
    assert state["model"] and all("lora_" in k for k in state["model"])  # checkpoints hold only the adapters


def test_lora_resume_equals_training_straight_through(tmp_path, base_unet):
    cfg = tiny_t2i(model={"pretrained": str(base_unet), "lora_rank": 4}, training={"epochs": 3, "learning_rate": 1e-2})
    train(cfg, tmp_path / "a", name="r", progress=False)
    assert train(cfg, tmp_path / "b", name="r", progress=False, extra_callbacks=[StopAt(step=8)])["status"] == "stopped"
    train(resume=tmp_path / "b" / "r", progress=False)
    a, b = (load_file(tmp_path / d / "r" / "final" / "unet_lora" / "pytorch_lora_weights.safetensors") for d in "ab")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_lora_needs_a_pretrained_unet():
    with pytest.raises(ValueError, match="model.lora_rank"):
        validate_config({"family": "t2i", "model": {"lora_rank": 8}})
    assert validate_config({"family": "t2i", "model": {"lora_rank": 8, "pretrained": "x"}}).model.lora_rank == 8


@pytest.mark.parametrize("objective, latent_space", [("flow", False), ("edm", True)], ids=["flow-pixels", "edm-latents"])
def test_text_to_image_trains_and_samples_with_flow_and_edm(tmp_path, tiny_vae, objective, latent_space):
    raw = tiny_t2i().model_dump(mode="json")
    raw["diffusion"] = {"objective": objective}
    if latent_space:
        raw["latent"]["vae"], raw["model"]["cross_attention_resolutions"] = str(tiny_vae), [4]
    row = train(validate_config(raw), tmp_path, progress=False)
    model = load_model(tmp_path / row["name"] / "final")
    assert model.objective == objective
    if objective == "edm":  # sigma_data was measured on the latents the UNet denoises, not on the pixels
        assert model.scheduler.config.sigma_data != pytest.approx(0.5)
    images = sample_model(model, sampler="heun", steps=3, num=2, seed=0, guidance=3.0, prompt=PROMPT)
    assert images.shape == (2, 16, 16, 3) and images.std() > 1
