"""Diffusion sampling with diffusers schedulers built from the run's own training schedule.

Every image i of a request starts from the noise of seed `seed + i`, so the same seed gives the same
starting point in any checkpoint, batch size or sampler. `callback({"step", "total", "latents"})` is called
after each step and may return False to cancel.
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch

from ..objectives import deterministic_sampler, make_sampler, samplers_of
from ..objectives.ddpm import SAMPLERS, make_noise_scheduler
from .request import Cancelled  # re-exported: samplers raise it


def seed_noise(seeds: list[int], shape: tuple[int, int, int]) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def seed_classes(num_classes: int, num: int, seed: int = 0, class_label: int | None = None,
                 model_name: str = "the model") -> torch.Tensor | None:
    """Class labels of a request: image i from seed `seed + i` has class (seed + i) mod C, so that any batch of a
    request is balanced and an image keeps its class whatever batch it comes in; or all `class_label`.
    None for a model without classes (which refuses a class)."""
    if not num_classes:
        if class_label is not None:
            raise ValueError(f"class: {model_name} is not class-conditional")
        return None
    if class_label is None:
        return (seed + torch.arange(num)) % num_classes
    if not 0 <= class_label < num_classes:
        raise ValueError(f"class: must be between 0 and {num_classes - 1} for {model_name}")
    return torch.full((num,), class_label, dtype=torch.long)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation; exact at t=0 and t=1."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    dot = (a.flatten() @ b.flatten()) / (a.norm() * b.norm())
    theta = torch.arccos(dot.clamp(-1, 1))
    if theta.abs() < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def class_conditioning(labels: torch.Tensor | None, null_class: int | None) -> tuple[dict, dict | None]:
    """The UNet inputs of class labels, and of "no label" (the null class) for classifier-free guidance."""
    if labels is None:
        return {}, None
    return {"class_labels": labels}, ({"class_labels": torch.full_like(labels, null_class)} if null_class is not None else None)


@torch.no_grad()
def denoise(unet, scheduler, noise: torch.Tensor, steps: int, cond: dict | None = None, uncond: dict | None = None,
            guidance: float = 1.0, seed: int = 0, callback: Callable[[dict], bool | None] | None = None) -> torch.Tensor:
    """Run the reverse process from `noise`; returns images (or latents) in the model's space.

    `cond` holds the UNet's conditioning inputs per image (class labels, or text embeddings and their mask);
    with `uncond` (the same for "no condition", or a negative prompt) and guidance != 1 each step is
    uncond + guidance * (cond - uncond)."""
    device, dtype = unet.device, unet.dtype
    scheduler.set_timesteps(steps, device=device)
    x = noise.to(device, dtype) * getattr(scheduler, "init_noise_sigma", 1.0)  # flow-matching schedulers start at 1
    generator = torch.Generator(device=device).manual_seed(seed)  # stochastic samplers (ddpm)
    guided = uncond is not None and guidance != 1.0
    on_device = lambda d: {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in d.items()}  # noqa: E731
    kwargs = on_device(cond or {})
    if guided:
        kwargs = {k: torch.cat([v, on_device(uncond)[k]]) for k, v in kwargs.items()}
    total = len(scheduler.timesteps)
    for i, t in enumerate(scheduler.timesteps):
        inp = scheduler.scale_model_input(x, t) if hasattr(scheduler, "scale_model_input") else x
        if guided:
            c, u = unet(torch.cat([inp, inp]), t, **kwargs).sample.chunk(2)
            out = u + guidance * (c - u)
        else:
            out = unet(inp, t, **kwargs).sample
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
        x = scheduler.step(out, t, x, **step_kwargs).prev_sample
        if callback is not None and callback({"step": i + 1, "total": total, "latents": x}) is False:
            raise Cancelled(f"cancelled at step {i + 1} of {total}")
    return x.float()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] N x C x H x W -> uint8 N x H x W x C."""
    arr = ((images.float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).numpy()


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(size, n - start)


def batch_progress(callback: Callable[[dict], bool | None] | None, batch: int, batches_total: int):
    """A sampler callback for batch `batch` of a request that reports the step count over all its batches."""
    if callback is None:
        return None

    def report(info: dict):
        return callback({**info, "step": batch * info["total"] + info["step"], "total": info["total"] * batches_total})

    return report


def slerp_frames(seed_a: int, seed_b: int, frames: int, shape) -> torch.Tensor:
    a, b = seed_noise([seed_a], shape)[0], seed_noise([seed_b], shape)[0]
    ts = [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.0]
    return torch.stack([slerp(a, b, t) for t in ts])


__all__ = ["SAMPLERS", "make_noise_scheduler", "make_sampler", "samplers_of", "deterministic_sampler", "seed_noise", "seed_classes", "slerp", "slerp_frames",
           "class_conditioning", "denoise", "batch_progress",
           "to_uint8", "batches", "Cancelled"]
