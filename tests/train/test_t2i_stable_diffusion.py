"""Fine-tuning a whole (tiny, random, built here) Stable Diffusion pipeline with LoRA on a captioned folder (on the UNet,
and on the text encoder too); DreamBooth's instance prompt on a folder without captions."""
import json
import string

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from pipelines.checkpoints import load_training_state
from pipelines.config import validate_config
from pipelines.sample.models import load_model, sample_model
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.train.test_t2i import tiny_t2i
from tests.train.test_training import StopAt

PROMPT = "a red square"


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    """A StableDiffusionPipeline folder as diffusers' own tests make them (random weights, no download): a CLIP text
    encoder of 32 dimensions with a character-level tokenizer, a two-level VAE (16 px -> 4 x 8 x 8), a cross-attention
    UNet, and SD's scheduler (scaled-linear betas, epsilon)."""
    root = tmp_path_factory.mktemp("sd")
    chars = list(string.ascii_lowercase + string.digits + ",.!'-")
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                                                num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=16,
                                                bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                                                pad_token_id=vocab["<|endoftext|>"]))
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8, sample_size=16)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=8)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(root / "pipeline")
    return root / "pipeline"


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    captions = {}
    for i in range(24):
        colour = ("red", "blue")[i % 2]
        image = np.zeros((16, 16, 3), np.uint8) + rng.integers(0, 30, (16, 16, 3), dtype=np.uint8)
        image[4:12, 4:12] = (200, 30, 30) if colour == "red" else (30, 30, 200)
        Image.fromarray(image).save(folder / f"img{i}.png")
        captions[f"img{i}.png"] = f"a {colour} square"
    (folder / "captions.json").write_text(json.dumps(captions))
    return folder


def sd_config(pipeline, dataset, **sections):
    raw = {"data": {"dataset": str(dataset), "image_size": 16, "val_fraction": 0.1, "test_fraction": 0.1},
           "model": {"pretrained": str(pipeline), "lora_rank": 4},
           "training": {"learning_rate": 1e-2, "ema_decay": 0.0, "epochs": 3, "batch_size": 8},
           "sampling": {"prompts": [PROMPT, "a blue square"]}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return tiny_t2i(**raw)


def test_a_stable_diffusion_pipeline_fine_tunes_with_lora_and_samples_from_a_prompt(tmp_path, tiny_sd, captioned):
    row = train(sd_config(tiny_sd, captioned), tmp_path, name="sd", progress=False)
    assert row["status"] == "completed", row.get("error")
    log = (tmp_path / "sd" / "log.txt").read_text()
    assert "using its text encoder and tokenizer (16 tokens), its VAE and its UNet" in log
    assert "keeping" in log and "scaled_linear betas over 1000 steps, epsilon prediction" in log
    final = tmp_path / "sd" / "final"
    assert json.loads((final / "scheduler" / "scheduler_config.json").read_text())["beta_schedule"] == "scaled_linear"
    assert (final / "unet_lora" / "pytorch_lora_weights.safetensors").exists() and not (final / "unet").exists()
    assert AutoencoderKL.from_pretrained(final / "vae").config.scaling_factor == 0.18215  # SD's VAE, its scaling factor

    model = load_model(final)
    assert (model.image_size, model.channels, model.noise_shape) == (16, 3, (4, 8, 8))
    assert type(model.encoder.tokenizer).__name__ == "CLIPTokenizer" and model.encoder.dim == 32
    images = sample_model(model, sampler="dpm++", steps=4, num=2, seed=0, guidance=3.0, prompt=PROMPT)
    assert images.shape == (2, 16, 16, 3) and images.std() > 1

    # Stock diffusers: the base pipeline with the saved adapters loaded predicts as the studio's model does.
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None)
    pipe.unet.load_lora_adapter(str(final / "unet_lora"), prefix=None, weight_name="pytorch_lora_weights.safetensors")
    x, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([500])
    states = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.unet(x, t, encoder_hidden_states=states).sample, pipe.unet(x, t, encoder_hidden_states=states).sample
    assert torch.allclose(ours, theirs, atol=1e-5)
    # The prompt's text states are the stock pipeline's (padding unmasked, as SD's UNet was trained), and the mask
    # the studio's UNet gets masks nothing.
    conditioning = model.conditioning([PROMPT])
    assert torch.allclose(conditioning["encoder_hidden_states"], text_states(pipe, PROMPT), atol=1e-5)
    assert bool(conditioning["encoder_attention_mask"].all())


def test_dreambooth_instance_prompt_needs_no_captions(tmp_path, tiny_sd, captioned):
    plain = tmp_path / "subject"
    plain.mkdir()
    for image in sorted(captioned.glob("*.png"))[:12]:
        (plain / image.name).write_bytes(image.read_bytes())
    cfg = sd_config(tiny_sd, plain, dreambooth={"instance_prompt": "a photo of sks square"},
                    training={"epochs": 2})
    row = train(cfg, tmp_path, name="db", progress=False)
    assert row["status"] == "completed", row.get("error")
    model = load_model(tmp_path / "db" / "final")
    images = sample_model(model, sampler="ddim", steps=3, num=1, seed=0, guidance=2.0, prompt="a photo of sks square")
    assert images.shape == (1, 16, 16, 3)


WEIGHTS = "pytorch_lora_weights.safetensors"


def text_states(pipe, prompt):
    """The prompt's text states as the stock pipeline makes them (no attention mask)."""
    with torch.no_grad():
        return pipe.encode_prompt(prompt, "cpu", 1, do_classifier_free_guidance=False)[0]


def test_lora_on_the_text_encoder_too_trains_and_loads_in_stock_diffusers(tmp_path, tiny_sd, captioned):
    cfg = sd_config(tiny_sd, captioned, model={"lora_text_encoder": True})
    row = train(cfg, tmp_path, name="te", progress=False)
    assert row["status"] == "completed", row.get("error")
    assert "training LoRA adapters of rank 4 on the UNet and the text encoder" in (tmp_path / "te" / "log.txt").read_text()
    losses = [m["value"] for m in RunStore(tmp_path).metrics("te", ["loss"])]
    assert losses and all(np.isfinite(losses))
    final = tmp_path / "te" / "final"
    saved = load_file(final / "text_encoder_lora" / WEIGHTS)
    assert saved and all(k.startswith("text_encoder.") and ".lora_" in k for k in saved)
    assert {k.split(".self_attn.")[1].split(".")[0] for k in saved} == {"q_proj", "k_proj", "v_proj", "out_proj"}
    assert max(v.abs().max() for k, v in saved.items() if "lora_B" in k) > 0  # B starts at zero: the adapters trained
    checkpoint = sorted((tmp_path / "te").glob("checkpoint-*"))[-1]
    state = load_training_state(checkpoint)["family"]["model"]
    assert any(k.startswith("text_encoder.") for k in state) and all("lora_" in k for k in state)  # adapters only

    # Stock diffusers, running the model card's code: the base pipeline, then the UNet's and the text encoder's adapters.
    card = (final / "README.md").read_text().replace("path/to/te/final", str(final))  # the card's stand-in for the folder
    code = next(block.removeprefix("python\n") for block in card.split("```") if "StableDiffusionPipeline" in block)
    assert "text_encoder_lora" in code
    stock = {}
    exec(code, stock)  # noqa: S102  (the card's own lines, run as a reader would)
    pipe, image = stock["pipe"], np.asarray(stock["image"])
    assert image.shape == (16, 16, 3) and image.std() > 1  # not blank
    model = load_model(final)  # the studio's loader applies the same adapters
    base = text_states(StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None), PROMPT)
    ours, theirs = model.conditioning([PROMPT])["encoder_hidden_states"], text_states(pipe, PROMPT)
    assert torch.allclose(ours, theirs, atol=1e-5) and not torch.allclose(theirs, base, atol=1e-4)
    x, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([500])
    with torch.no_grad():
        assert torch.allclose(model.unet(x, t, encoder_hidden_states=ours).sample,
                              pipe.unet(x, t, encoder_hidden_states=theirs).sample, atol=1e-5)
    images = sample_model(model, sampler="dpm++", steps=4, num=2, seed=0, guidance=3.0, prompt=PROMPT)
    assert images.shape == (2, 16, 16, 3) and images.std() > 1


def test_text_encoder_lora_resumes_exactly(tmp_path, tiny_sd, captioned):
    cfg = sd_config(tiny_sd, captioned, model={"lora_text_encoder": True},
                    training={"epochs": 3, "batch_size": 4, "ema_decay": 0.9})
    train(cfg, tmp_path / "a", name="r", progress=False)
    assert train(cfg, tmp_path / "b", name="r", progress=False, extra_callbacks=[StopAt(step=7)])["status"] == "stopped"
    assert train(resume=tmp_path / "b" / "r", progress=False)["status"] == "completed"
    for part in ("text_encoder_lora", "unet_lora"):
        a, b = (load_file(tmp_path / d / "r" / "final" / part / WEIGHTS) for d in "ab")
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), part


def test_text_encoder_lora_is_refused_without_lora_or_a_pipeline(tmp_path, tiny_sd, captioned):
    with pytest.raises(ValueError, match="model.lora_text_encoder"):
        sd_config(tiny_sd, captioned, model={"lora_rank": 0, "lora_text_encoder": True})
    with pytest.raises(ValueError, match="model.lora_text_encoder"):
        validate_config({"family": "t2i", "model": {"lora_text_encoder": True}})
    cfg = sd_config(tiny_sd / "unet", captioned, model={"lora_text_encoder": True},  # a bare UNet: no text encoder of its own
                    text={"encoder": str(tiny_sd)}, latent={"vae": str(tiny_sd)})
    with pytest.raises(ValueError, match="model.lora_text_encoder: .* is not a whole Stable Diffusion pipeline"):
        train(cfg, tmp_path, name="bare", progress=False)


def test_a_pipeline_fine_tunes_only_as_the_ddpm_it_was_trained_as(tmp_path, tiny_sd, captioned):
    raw = sd_config(tiny_sd, captioned).model_dump(mode="json")
    raw["diffusion"] = {"objective": "flow"}
    with pytest.raises(ValueError, match="diffusion.objective: flow cannot fine-tune model.pretrained"):
        train(validate_config(raw), tmp_path, name="flow", progress=False)
