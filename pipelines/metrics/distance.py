"""Fréchet distance and KID between feature sets, through torchmetrics, and cached real-image features.

Features are extracted once (batched, without gradients) and handed to torchmetrics through an identity
"feature network": the same features then serve FD and KID, and real ones can be cached on disk. The
metrics never sync across processes: under `accelerate launch` only the main process scores.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


class _Given(nn.Module):
    """Lets torchmetrics take features we already have."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def extract(extractor: nn.Module, images: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Features (float64, on the CPU) of uint8 images, N x C x H x W tensors or N x H x W x C arrays."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images).permute(0, 3, 1, 2)
    device = next(extractor.parameters(), torch.empty(0)).device
    return torch.cat([extractor(images[i:i + batch_size].to(device)).double().cpu()
                      for i in range(0, len(images), batch_size)])


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]), sync_on_compute=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000, subsets: int = 100,
                    seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over random subsets); subsets shrink to the smaller set for small counts."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = max(2, min(subset_size, len(real), len(fake)))
    with warnings.catch_warnings():  # that it keeps all features: it is given features, and those are small
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=subsets, subset_size=size,
                                         sync_on_compute=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):  # subsets are drawn from torch's global RNG: keep training's untouched
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def distances(real: torch.Tensor, fake: torch.Tensor, kid_subset_size: int = 1000) -> dict[str, float]:
    kid, kid_std = kernel_distance(real, fake, kid_subset_size)
    return {"fd": frechet_distance(real, fake), "kid": kid, "kid_std": kid_std}


def real_features(cache_dir: str | Path, images, dataset: str, split: str, extractor: nn.Module, num: int,
                  chunk: int = 512, should_stop=None) -> torch.Tensor:
    """Features of up to `num` of a split's real images (an ImageDataset, or a uint8 N x C x H x W tensor), read
    and extracted a chunk at a time, cached in `cache_dir`.

    Files are named by dataset, split, resolution and extractor; the key also holds a digest of the images
    themselves and the extractor's fingerprint, so changed data or weights never reuse stale features.
    `should_stop()` is asked before each chunk is extracted (StopRequested: a person's stop; nothing is cached).
    """
    from ..data import ImageDataset
    from ..models.loading import cached_tensors

    if isinstance(images, torch.Tensor):
        images = ImageDataset.from_tensor(images)
    rows = np.arange(len(images))
    if len(images) > num:
        rows = np.sort(np.random.default_rng(0).permutation(len(images))[:num])
    chunks = [rows[i:i + chunk] for i in range(0, len(rows), chunk)]
    digest = hashlib.sha1()
    for part in chunks:
        digest.update(images.read(part).numpy().tobytes())
    digest.update(extractor.fingerprint.encode())
    name = f"{dataset}_{split}_{images.image_shape[-1]}px_{extractor.name}_{digest.hexdigest()[:12]}"
    path = Path(cache_dir) / "real-features" / name
    from ..data.source import StopRequested

    def features(part):
        if should_stop is not None and should_stop():
            raise StopRequested("stopped while extracting the real images' features")
        return extract(extractor, images.read(part))

    return cached_tensors(path, lambda: {"features": torch.cat([features(part) for part in chunks])})["features"]
