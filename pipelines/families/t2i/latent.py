"""Latent diffusion's frozen autoencoder: a diffusers AutoencoderKL, and the training images' latents cached on disk.

A latent is stored as its distribution (mean and standard deviation per element), so each training step can
draw a fresh sample as diffusers' training scripts do, and in the UNet's units (scaled by the VAE's
`scaling_factor`, shifted by its `shift_factor` where it has one).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from ...models.loading import cached_tensors, load_component, weights_fingerprint


def load_vae(name: str, device: str | torch.device = "cpu", slicing: bool = True, tiling: bool = False,
             **kwargs) -> AutoencoderKL:
    """An AutoencoderKL from a folder (or a pipeline folder with vae/) or a hub id (or a hub pipeline's vae/)."""
    vae = load_component(AutoencoderKL, name, "vae", "latent.vae", **kwargs)
    vae = vae.eval().requires_grad_(False).to(device)
    # Slicing: a batch goes through one image at a time; tiling: big images in overlapping tiles. Both cut the
    # memory of encoding and decoding, slicing at no cost in quality.
    vae.enable_slicing() if slicing else vae.disable_slicing()
    vae.enable_tiling() if tiling else vae.disable_tiling()
    return vae


def downscale_factor(vae: AutoencoderKL) -> int:
    """Pixels per latent element along each side."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def vae_fingerprint(vae: AutoencoderKL) -> str:
    """Names the weights and the settings, not where they were loaded from (`_name_or_path` and such)."""
    settings = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
    return weights_fingerprint(vae, settings, vae.use_tiling)  # tiling changes large images' latents


def to_latent_units(vae: AutoencoderKL, z: torch.Tensor) -> torch.Tensor:
    return (z - (vae.config.get("shift_factor") or 0.0)) * vae.config.scaling_factor


@torch.no_grad()
def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from latents in the UNet's units."""
    z = latents / vae.config.scaling_factor + (vae.config.get("shift_factor") or 0.0)
    return vae.decode(z.to(vae.device, vae.dtype)).sample.float().clamp(-1, 1)


@torch.no_grad()
def encode(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the latents of uint8 N x C x H x W images, in the UNet's units, on the CPU."""
    from tqdm.auto import tqdm

    means, stds = [], []
    for start in tqdm(range(0, len(images), batch_size), desc="encoding latents", unit="batch", leave=False,
                      disable=len(images) <= 8 * batch_size):
        x = images[start:start + batch_size].to(vae.device, vae.dtype) / 127.5 - 1.0
        dist = vae.encode(x).latent_dist
        means.append(to_latent_units(vae, dist.mean).float().cpu())
        stds.append((dist.std * vae.config.scaling_factor).float().cpu())
    return torch.cat(means), torch.cat(stds)


def cached_latents(vae: AutoencoderKL, images, cache_dir: Path | None, flips: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std), N x V x C x h x w with V = 2 when `flips` (the mirrored image's latents as well: a mirrored
    latent is not the latent of the mirrored image), of an ImageDataset's images, read a chunk at a time; read
    back (memory-mapped) from `<cache_dir>/latents/<vae>/<images digest>-<V>/` when computed before."""
    views = 2 if flips else 1
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256()
        for chunk in images.chunks():
            digest.update(chunk.numpy().tobytes())
        path = Path(cache_dir) / "latents" / vae_fingerprint(vae) / f"{digest.hexdigest()[:24]}-{views}"

    def compute():
        means, stds = [], []
        for chunk in images.chunks():
            pairs = [encode(vae, view) for view in (chunk, chunk.flip(-1))[:views]]
            means.append(torch.stack([m for m, _ in pairs], 1))
            stds.append(torch.stack([s for _, s in pairs], 1))
        return {"mean": torch.cat(means), "std": torch.cat(stds)}

    saved = cached_tensors(path, compute)
    return saved["mean"], saved["std"]
