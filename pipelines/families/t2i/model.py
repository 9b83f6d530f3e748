"""Generating from a saved text-to-image model: `unet/` (a UNet2DConditionModel) or LoRA adapters of a base UNet
(`unet_lora/` and `lora.json`), `scheduler/`, `vae/` for a latent model, `text_encoder.json` naming the encoder it
was trained with, and `text_encoder_lora/` when that encoder's adapters were trained too."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ...checkpoints import read_meta
from ...objectives import load_scheduler, objective_of
from ...sample.diffusion import (
    batch_progress,
    batches,
    denoise,
    deterministic_sampler,
    make_sampler,
    seed_noise,
    slerp_frames,
    to_uint8,
)
from ...sample.request import SampleRequest
from .latent import decode, downscale_factor, load_vae
from .lora import TEXT_ADAPTER_DIR, is_lora_folder, load_lora_text_encoder, load_lora_unet
from .text import TextEncoder

TEXT_FILE = "text_encoder.json"


@dataclass
class TextModel:
    unet: UNet2DConditionModel
    scheduler: SchedulerMixin
    encoder: TextEncoder
    path: Path
    meta: dict = field(default_factory=dict)
    vae: AutoencoderKL | None = None
    num_classes = 0

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """What the UNet denoises: an image, or a latent."""
        size = self.unet.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return self.unet.config.in_channels, size, size

    @property
    def image_size(self) -> int:
        return self.noise_shape[1] * (downscale_factor(self.vae) if self.vae is not None else 1)

    @property
    def channels(self) -> int:
        return self.noise_shape[0] if self.vae is None else self.vae.config.out_channels

    def images(self, x: torch.Tensor) -> np.ndarray:
        """uint8 images from what the sampler returns (decoded first in a latent model)."""
        return to_uint8(x if self.vae is None else decode(self.vae, x))

    @property
    def objective(self) -> str:
        return objective_of(self.scheduler)

    @property
    def label(self) -> str:
        run, step = self.meta.get("run"), self.meta.get("step")
        return f"{run} step {step} {self.image_size}px" if run else f"{self.path.name} {self.image_size}px"

    takes_prompt = True
    holds = f"text-to-image model ({TEXT_FILE})"

    @staticmethod
    def recognises(folder: Path) -> bool:
        return is_text_folder(folder)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> TextModel:
        return load_text_model(folder, device)

    def sample(self, r: SampleRequest, callback=None) -> np.ndarray:
        return generate_text(self, r.prompt, r.negative_prompt, r.sampler, r.steps, r.num, r.seed, r.guidance,
                             r.batch_size, callback)

    def interpolate(self, r: SampleRequest, seed_b: int, frames: int) -> np.ndarray:
        return interpolate_seeds(self, r.prompt, r.seed, seed_b, frames, r.steps, r.guidance, r.negative_prompt)

    def interpolate_prompts(self, r: SampleRequest, prompt_b: str, frames: int) -> np.ndarray:
        """Frames from `r.prompt` to `prompt_b`, the same starting noise (seed `r.seed`)."""
        return interpolate_prompts(self, r.prompt, prompt_b, frames, r.seed, r.steps, r.guidance, r.negative_prompt)

    def conditioning(self, texts: list[str]) -> dict:
        """Text states of each text; a request repeats one prompt, so each distinct text is encoded once."""
        distinct = sorted(set(texts))
        states, mask = self.encoder.encode(distinct)
        rows = torch.tensor([distinct.index(t) for t in texts])
        return {"encoder_hidden_states": states[rows], "encoder_attention_mask": mask[rows]}


def is_text_folder(path: str | Path) -> bool:
    return (Path(path) / TEXT_FILE).exists()


def load_text_model(path: str | Path, device: str | torch.device = "cpu") -> TextModel:
    path = Path(path)
    if not is_text_folder(path):
        raise FileNotFoundError(f"checkpoint: {path} holds no text-to-image model ({TEXT_FILE} expected)")
    text = json.loads((path / TEXT_FILE).read_text())
    if is_lora_folder(path):
        unet = load_lora_unet(path)
    else:
        unet = UNet2DConditionModel.from_pretrained(path / "unet", use_safetensors=True)
    scheduler = load_scheduler(path / "scheduler")
    vae = load_vae(str(path / "vae"), device, use_safetensors=True) if (path / "vae").is_dir() else None
    encoder = TextEncoder(text["encoder"], text["max_length"], device)
    if (path / TEXT_ADAPTER_DIR).is_dir():
        encoder.model = load_lora_text_encoder(encoder.model, path).to(device)
    return TextModel(unet.to(device).eval(), scheduler, encoder, path, read_meta(path), vae)


def generate_text(model: TextModel, prompt: str, negative_prompt: str = "", sampler: str = "dpm++", steps: int = 20,
                  num: int = 4, seed: int = 0, guidance: float = 3.0, batch_size: int = 64,
                  callback: Callable[[dict], bool | None] | None = None) -> np.ndarray:
    """uint8 N x H x W x C images of `prompt`; image i starts from the noise of seed `seed + i`."""
    if not prompt.strip():
        raise ValueError("prompt: empty; describe the image (e.g. 'a red circle on a blue background')")
    out, rounds = [], (num + batch_size - 1) // batch_size
    for start, n in batches(num, batch_size):
        noise = seed_noise(list(range(seed + start, seed + start + n)), model.noise_shape)
        images = denoise(model.unet, make_sampler(sampler, model.scheduler), noise, steps, model.conditioning([prompt] * n),
                         model.conditioning([negative_prompt] * n), guidance, seed=seed + start,
                         callback=batch_progress(callback, start // batch_size, rounds))
        out.append(model.images(images))
    return np.concatenate(out)


def interpolate_seeds(model: TextModel, prompt: str, seed_a: int, seed_b: int, frames: int = 8, steps: int = 50,
                      guidance: float = 3.0, negative_prompt: str = "") -> np.ndarray:
    """Frames of one prompt between two seeds: spherically interpolated starting noise, a deterministic sampler."""
    noise = slerp_frames(seed_a, seed_b, frames, model.noise_shape)
    images = denoise(model.unet, make_sampler(deterministic_sampler(model.scheduler), model.scheduler), noise, steps, model.conditioning([prompt] * frames),
                     model.conditioning([negative_prompt] * frames), guidance)
    return model.images(images)


def interpolate_prompts(model: TextModel, prompt_a: str, prompt_b: str, frames: int = 8, seed: int = 0, steps: int = 50,
                        guidance: float = 3.0, negative_prompt: str = "") -> np.ndarray:
    """Frames between two prompts: linearly interpolated text states, the same starting noise, a deterministic sampler.
    The first and last frames are exactly the two prompts' images."""
    a, b = model.conditioning([prompt_a]), model.conditioning([prompt_b])
    ts = torch.linspace(0, 1, frames)[:, None]
    states = (1 - ts[..., None]) * a["encoder_hidden_states"] + ts[..., None] * b["encoder_hidden_states"]
    # Each token's attention weight fades linearly between the prompts' masks: diffusers turns a mask m into the
    # bias (1 - m) * -10000, so m = 1 + log(w) / 10000 scales the token's softmax weight by w. (In a float16
    # UNet such m round to 1 or 0: the fade becomes a switch half-way; the end frames stay exact.)
    weight = (1 - ts) * a["encoder_attention_mask"].float() + ts * b["encoder_attention_mask"].float()
    mask = (1 + torch.log(weight.clamp(min=1e-30)) / 10_000).clamp(min=0)
    noise = slerp_frames(seed, seed, frames, model.noise_shape)
    images = denoise(model.unet, make_sampler(deterministic_sampler(model.scheduler), model.scheduler), noise, steps,
                     {"encoder_hidden_states": states, "encoder_attention_mask": mask},
                     model.conditioning([negative_prompt] * frames), guidance)
    return model.images(images)
