"""Any generating checkpoint behind one interface: diffusion, GAN and text-to-image folders alike.

`load_model` tells them apart by their files; `sample_model` and `interpolate_model` take every option and
use the ones the model has (a GAN has no sampler, steps or guidance; a diffusion model no truncation; only a
text-to-image model takes, and needs, a prompt).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .gan import GANModel, generate_gan, interpolate_gan, is_gan_folder, load_gan
from .generate import DiffusionModel, generate, interpolate, load_diffusion
from .t2i import TextModel, generate_text, interpolate_seeds, is_text_folder, load_text_model
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


def interpolate_model(model: Model, seed_a: int, seed_b: int, frames: int = 8, steps: int = 50,
                      class_label: int | None = None, guidance: float = 1.0, truncation: float | None = None,
                      prompt: str | None = None, negative_prompt: str = "") -> np.ndarray:
    if isinstance(model, TextModel):
        if not prompt:
            raise ValueError(f"prompt: {model.path} is a text-to-image model; give a prompt")
        return interpolate_seeds(model, prompt, seed_a, seed_b, frames, steps, guidance, negative_prompt)
    if isinstance(model, GANModel):
        return interpolate_gan(model, seed_a, seed_b, frames, class_label, truncation)
    return interpolate(model, seed_a, seed_b, frames, steps, class_label, guidance)


def compare(paths: list[str | Path], sampler: str = "dpm++", steps: int = 20, num: int = 8, seed: int = 0,
            class_label: int | None = None, guidance: float = 1.0, truncation: float | None = None,
            prompt: str | None = None, negative_prompt: str = "") -> list[tuple[str, np.ndarray, float]]:
    """The same seeds from several checkpoints, loaded one at a time: (label, images, seconds) each."""
    rows = []
    for path in paths:
        model = load_model(path)
        start = time.perf_counter()
        images = sample_model(model, sampler, steps, num, seed, class_label, guidance, truncation, prompt=prompt,
                              negative_prompt=negative_prompt)
        rows.append((model.label, images, time.perf_counter() - start))
        del model
    return rows
