"""Generating from a saved GAN: `generator.safetensors` (EMA weights) and `gan_config.json` in a folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ...checkpoints import read_meta
from ...sample.diffusion import seed_classes, slerp, to_uint8
from ...sample.request import SampleRequest
from .networks import GANArch, Generator

GENERATOR_FILE, ARCH_FILE = "generator.safetensors", "gan_config.json"  # the EMA generator, its architecture


MIN_TRUNCATION = 0.1  # below it, redrawing values beyond the bound takes too many draws


def noise(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """z of image i from seed `seed + i`. The truncation trick draws again every value beyond +-truncation:
    less variety, more typical images."""
    if truncation is not None and truncation < MIN_TRUNCATION:
        raise ValueError(f"truncation: must be at least {MIN_TRUNCATION} (or none), got {truncation:g}")
    out = []
    for i in range(n):
        gen = torch.Generator().manual_seed(seed + i)
        z = torch.randn(z_dim, generator=gen)
        while truncation and (outside := z.abs() > truncation).any():
            z[outside] = torch.randn(int(outside.sum()), generator=gen)
        out.append(z)
    return torch.stack(out)


@dataclass
class GANModel:
    generator: Generator
    arch: GANArch
    path: Path
    meta: dict = field(default_factory=dict)

    image_size = property(lambda self: self.arch.resolution)
    channels = property(lambda self: self.arch.channels)
    num_classes = property(lambda self: self.arch.num_classes)

    @property
    def label(self) -> str:
        run, step = self.meta.get("run"), self.meta.get("step")
        return f"{run} step {step} {self.image_size}px" if run else f"{self.path.name} {self.image_size}px"

    takes_prompt = False
    holds = f"GAN ({GENERATOR_FILE})"

    @staticmethod
    def recognises(folder: Path) -> bool:
        return is_gan_folder(folder)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> GANModel:
        return load_gan(folder, device)

    def sample(self, r: SampleRequest, callback=None) -> np.ndarray:
        images = generate_gan(self, r.num, r.seed, r.class_label, r.truncation, r.batch_size)
        if callback is not None:  # one step: progress bars fill at once
            callback({"step": 1, "total": 1})
        return images

    def interpolate(self, r: SampleRequest, seed_b: int, frames: int) -> np.ndarray:
        return interpolate_gan(self, r.seed, seed_b, frames, r.class_label, r.truncation)


def is_gan_folder(path: str | Path) -> bool:
    return (Path(path) / GENERATOR_FILE).exists()


def load_gan(path: str | Path, device: str | torch.device = "cpu") -> GANModel:
    path = Path(path)
    if not (path / GENERATOR_FILE).exists() or not (path / ARCH_FILE).exists():
        raise FileNotFoundError(f"checkpoint: {path} holds no GAN ({GENERATOR_FILE} and {ARCH_FILE} expected)")
    arch = GANArch(**json.loads((path / ARCH_FILE).read_text()))
    generator = Generator(arch)
    generator.load_state_dict(load_file(path / GENERATOR_FILE))
    return GANModel(generator.to(device).eval(), arch, path, read_meta(path))


def _labels(model: GANModel, num: int, class_label: int | None, seed: int = 0) -> torch.Tensor | None:
    return seed_classes(model.num_classes, num, seed, class_label, str(model.path))


@torch.no_grad()
def generate_gan(model: GANModel, num: int = 16, seed: int = 0, class_label: int | None = None,
                 truncation: float | None = None, batch_size: int = 256) -> np.ndarray:
    """uint8 N x H x W x C; image i from the z of seed `seed + i` (a conditional model cycles its classes)."""
    labels, device = _labels(model, num, class_label, seed), next(model.generator.parameters()).device
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = noise(n, model.arch.z_dim, seed + start, truncation).to(device)
        y = None if labels is None else labels[start:start + n].to(device)
        out.append(to_uint8(model.generator(z, y)))
    return np.concatenate(out)


@torch.no_grad()
def interpolate_gan(model: GANModel, seed_a: int, seed_b: int, frames: int = 8, class_label: int | None = None,
                    truncation: float | None = None) -> np.ndarray:
    """Frames along the great circle between two seeds' z (spherical: z lives near a sphere)."""
    a, b = noise(1, model.arch.z_dim, seed_a, truncation)[0], noise(1, model.arch.z_dim, seed_b, truncation)[0]
    ts = [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.0]
    z = torch.stack([slerp(a, b, t) for t in ts])
    if truncation:  # between two truncated points the path bulges out by up to sqrt(2)
        z = z.clamp(-truncation, truncation)
    labels = _labels(model, frames, class_label if class_label is not None else (0 if model.num_classes else None))
    device = next(model.generator.parameters()).device
    return to_uint8(model.generator(z.to(device), None if labels is None else labels.to(device)))
