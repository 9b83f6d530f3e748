"""Generating from a saved diffusion model: load a checkpoint folder, sample, interpolate.

A checkpoint folder is any of a run's `checkpoint-<step>/`, `best/`, `final/`, or a diffusers folder on
disk (a pipeline folder with `unet/` and `scheduler/`, or a bare UNet folder).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ...checkpoints import read_meta
from ...objectives import load_scheduler, objective_of
from ...sample.diffusion import (
    batch_progress,
    batches,
    class_conditioning,
    denoise,
    deterministic_sampler,
    make_sampler,
    seed_classes,
    seed_noise,
    slerp_frames,
    to_uint8,
)
from ...sample.request import SampleRequest
from .pretrained import load_unet


@dataclass
class DiffusionModel:
    unet: UNet2DModel
    scheduler: SchedulerMixin  # the training scheduler: names the objective, builds the samplers
    path: Path
    meta: dict = field(default_factory=dict)
    takes_prompt = False
    holds = "diffusers UNet (unet/config.json or config.json)"

    @staticmethod
    def recognises(folder: Path) -> bool:
        """A diffusers UNet2DModel: a pipeline folder, or a bare UNet folder."""
        for config in (folder / "unet" / "config.json", folder / "config.json"):
            if config.is_file():
                return json.loads(config.read_text()).get("_class_name") == "UNet2DModel"
        return False

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> DiffusionModel:
        return load_diffusion(folder, device)

    def sample(self, r: SampleRequest, callback: Callable[[dict], bool | None] | None = None) -> np.ndarray:
        return generate(self, r.sampler, r.steps, r.num, r.seed, r.class_label, r.guidance, r.batch_size, callback)

    def interpolate(self, r: SampleRequest, seed_b: int, frames: int) -> np.ndarray:
        return interpolate(self, r.seed, seed_b, frames, r.steps, r.class_label, r.guidance)

    @property
    def image_size(self) -> int:
        size = self.unet.config.sample_size
        return size if isinstance(size, int) else size[0]

    @property
    def channels(self) -> int:
        return self.unet.config.in_channels

    @property
    def num_classes(self) -> int:
        # One class embedding is the "no label" used for classifier-free guidance.
        n = self.unet.config.num_class_embeds
        return self.meta.get("num_classes", n - 1 if n else 0) if n else 0

    @property
    def objective(self) -> str:
        return objective_of(self.scheduler)

    @property
    def label(self) -> str:
        run, step = self.meta.get("run"), self.meta.get("step")
        return f"{run} step {step} {self.image_size}px" if run else f"{self.path.name} {self.image_size}px"


def load_diffusion(path: str | Path, device: str | torch.device = "cpu") -> DiffusionModel:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint: {path} is not a folder")
    unet_dir = path / "unet" if (path / "unet").is_dir() else path
    if not (unet_dir / "config.json").exists():
        raise FileNotFoundError(f"checkpoint: {path} holds no diffusers UNet (expected unet/config.json or config.json)")
    unet = load_unet(path).to(device).eval()
    # A pipeline folder has scheduler/ (a flat one, as early published pipelines, scheduler_config.json); a bare
    # unet/ folder of one has it beside it.
    sched_dir = next((d for d in (path / "scheduler", path, path.parent / "scheduler")
                      if (d / "scheduler_config.json").is_file()), None)
    if sched_dir is None:
        raise FileNotFoundError(f"checkpoint: {path} has no scheduler/ (beside or inside it): the noise schedule "
                                "the model was trained with is unknown")
    scheduler = load_scheduler(sched_dir)
    return DiffusionModel(unet, scheduler, path, read_meta(path) or read_meta(path.parent))


def _labels(model: DiffusionModel, num: int, class_label: int | None, seed: int = 0) -> torch.Tensor | None:
    return seed_classes(model.num_classes, num, seed, class_label, str(model.path))


def generate(model: DiffusionModel, sampler: str = "dpm++", steps: int = 20, num: int = 16, seed: int = 0,
             class_label: int | None = None, guidance: float = 1.0, batch_size: int = 64,
             callback: Callable[[dict], bool | None] | None = None) -> np.ndarray:
    """uint8 N x H x W x C images; image i starts from the noise of seed `seed + i`.

    Without a class, a conditional model cycles through its classes. `callback` receives the overall
    step count so a progress bar covers all batches.
    """
    labels = _labels(model, num, class_label, seed)
    shape = (model.channels, model.image_size, model.image_size)
    out, rounds = [], (num + batch_size - 1) // batch_size
    for start, n in batches(num, batch_size):
        noise = seed_noise(list(range(seed + start, seed + start + n)), shape)
        batch_callback = batch_progress(callback, start // batch_size, rounds)

        cond, uncond = class_conditioning(None if labels is None else labels[start:start + n], model.num_classes or None)
        images = denoise(model.unet, make_sampler(sampler, model.scheduler), noise, steps, cond, uncond, guidance,
                         seed=seed + start, callback=batch_callback)
        out.append(to_uint8(images))
    return np.concatenate(out)


def interpolate(model: DiffusionModel, seed_a: int, seed_b: int, frames: int = 8, steps: int = 50,
                class_label: int | None = None, guidance: float = 1.0) -> np.ndarray:
    """Frames between two seeds: spherical interpolation of the starting noise, a deterministic sampler (DDIM for
    ddpm, Euler for flow, Heun for edm)."""
    shape = (model.channels, model.image_size, model.image_size)
    noise = slerp_frames(seed_a, seed_b, frames, shape)
    labels = _labels(model, frames, class_label if class_label is not None else (0 if model.num_classes else None))
    images = denoise(model.unet, make_sampler(deterministic_sampler(model.scheduler), model.scheduler), noise, steps,
                     *class_conditioning(labels, model.num_classes or None), guidance)
    return to_uint8(images)
