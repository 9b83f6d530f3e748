"""Any generating checkpoint behind one interface: diffusion, GAN and text-to-image folders alike.

`load_model` tells them apart by their files; `sample_model` and `interpolate_model` take every option and
use the ones the model has (a GAN has no sampler, steps or guidance; a diffusion model no truncation; only a
text-to-image model takes, and needs, a prompt).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checks import check_sampling
from .gan import GANModel, generate_gan, interpolate_gan, is_gan_folder, load_gan
from .generate import DiffusionModel, generate, interpolate, load_diffusion
from .t2i import TextModel, generate_text, interpolate_prompts, interpolate_seeds, is_text_folder, load_text_model
from .upscale import is_sr_folder

Model = DiffusionModel | GANModel | TextModel


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Model:
    if is_sr_folder(path):
        raise ValueError(f"checkpoint: {path} is a super-resolution model: it upscales images rather than generating "
                         "them (python -m pipelines upscale, or the Upscale tab)")
    if is_text_folder(path):
        return load_text_model(path, device)
    return load_gan(path, device) if is_gan_folder(path) else load_diffusion(path, device)


def sample_model(model: Model, sampler: str = "dpm++", steps: int = 20, num: int = 16, seed: int = 0,
                 class_label: int | None = None, guidance: float = 1.0, truncation: float | None = None,
                 batch_size: int = 64, callback: Callable[[dict], bool | None] | None = None,
                 prompt: str | None = None, negative_prompt: str = "") -> np.ndarray:
    check_sampling(steps, num, seed, guidance, truncation)
    if isinstance(model, TextModel):
        if prompt is None:
            raise ValueError(f"prompt: {model.path} is a text-to-image model; give a prompt")
        return generate_text(model, prompt, negative_prompt, sampler, steps, num, seed, guidance, batch_size, callback)
    if prompt:
        raise ValueError(f"prompt: {model.path} does not take prompts (it is not a text-to-image model)")
    if isinstance(model, GANModel):
        images = generate_gan(model, num, seed, class_label, truncation, batch_size)
        if callback is not None:
            callback({"step": 1, "total": 1})
        return images
    return generate(model, sampler, steps, num, seed, class_label, guidance, batch_size, callback)


def interpolate_prompts_model(model: Model, prompt_a: str, prompt_b: str, frames: int = 8, seed: int = 0, steps: int = 50,
                              guidance: float = 3.0, negative_prompt: str = "") -> np.ndarray:
    """Frames between two prompts (interpolated text states, the same starting noise): text-to-image models only."""
    check_sampling(steps, seed=seed, guidance=guidance, frames=frames)
    if not isinstance(model, TextModel):
        raise ValueError(f"checkpoint: {model.path} is not a text-to-image model; only those interpolate between prompts")
    if not prompt_a.strip() or not prompt_b.strip():
        raise ValueError("prompt_b: give both prompts" if prompt_a.strip() else "prompt_a: give both prompts")
    return interpolate_prompts(model, prompt_a, prompt_b, frames, seed, steps, guidance, negative_prompt)


def interpolate_model(model: Model, seed_a: int, seed_b: int, frames: int = 8, steps: int = 50,
                      class_label: int | None = None, guidance: float = 1.0, truncation: float | None = None,
                      prompt: str | None = None, negative_prompt: str = "") -> np.ndarray:
    check_sampling(steps, seed=seed_a, seed_b=seed_b, guidance=guidance, truncation=truncation, frames=frames)
    if isinstance(model, TextModel):
        if not prompt:
            raise ValueError(f"prompt: {model.path} is a text-to-image model; give a prompt")
        return interpolate_seeds(model, prompt, seed_a, seed_b, frames, steps, guidance, negative_prompt)
    if isinstance(model, GANModel):
        return interpolate_gan(model, seed_a, seed_b, frames, class_label, truncation)
    return interpolate(model, seed_a, seed_b, frames, steps, class_label, guidance)
