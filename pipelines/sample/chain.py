"""Low-resolution generation chained into super-resolution: generate with a diffusion, GAN or text-to-image
checkpoint, upscale with a super-resolution model (once or twice), then optional unsharp masking and gamma.

Every stage is timed; bicubic upscaling of the same images to the same size is kept for comparison.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from .checks import check_range, check_tiling
from .compare import Column, comparison_grid
from .images import pil_images
from .models import load_model, sample_model
from .request import SampleRequest
from .upscale_images import bicubic, load_upscaler, upscale_image


@dataclass
class ChainResult:
    low: list[Image.Image]
    bicubic: list[Image.Image]
    upscaled: list[Image.Image]
    seconds: dict[str, float] = field(default_factory=dict)  # generate, upscale, post-process
    generator: str = ""
    upscaler: str = ""

    @property
    def scale(self) -> int:
        return self.upscaled[0].width // self.low[0].width


def post_process(img: Image.Image, unsharp: float = 0.0, radius: float = 2.0, gamma: float = 1.0) -> Image.Image:
    """Unsharp masking (`unsharp`: strength, 1.0 = 100%; 0 off) and gamma (>1 brightens mid-tones; 1 off)."""
    if unsharp > 0:
        img = img.filter(ImageFilter.UnsharpMask(radius=radius, percent=round(unsharp * 100), threshold=2))
    if gamma != 1.0:
        table = [round(255 * (i / 255) ** (1 / gamma)) for i in range(256)]
        img = img.point(table * len(img.getbands()))
    return img


def chain(generator: str | Path, upscaler: str | Path, request: SampleRequest, passes: int = 1,
          unsharp: float = 0.0, unsharp_radius: float = 2.0, gamma: float = 1.0, tile: int = 256, tile_pad: int = 16,
          device: str | torch.device = "cpu", progress: Callable[[str, int, int], None] | None = None) -> ChainResult:
    """`request.num` images from `generator`, each upscaled `passes` times by `upscaler`, then post-processed.
    `progress(stage, done, total)` is told of each image."""
    if passes not in (1, 2):
        raise ValueError(f"passes: 1 or 2 (got {passes})")
    check_range("gamma", gamma, 0, 10, above=True)
    check_range("unsharp", unsharp, 0, 10)
    check_range("unsharp_radius", unsharp_radius, 0, 100, above=True)
    request.check()
    check_tiling(tile, tile_pad)
    times = {}
    start = time.perf_counter()
    model = load_model(generator, device)
    if not model.takes_prompt:  # a prompt typed for another generator is not this one's
        request = request.but(prompt=None, negative_prompt="")
    images = sample_model(model, request,
                          callback=(lambda info: progress("generate", info["step"], info["total"])) if progress else None)
    label = model.label
    del model  # the generator is done before the upscaler is loaded
    low = pil_images(images)
    times["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    sr = load_upscaler(upscaler, device)
    upscaled = []
    for i, img in enumerate(low):
        for _ in range(passes):
            img = upscale_image(sr, img, tile=tile, tile_pad=tile_pad)
        upscaled.append(img)
        if progress:
            progress("upscale", i + 1, len(low))
    times["upscale"] = time.perf_counter() - start

    start = time.perf_counter()
    upscaled = [post_process(img, unsharp, unsharp_radius, gamma) for img in upscaled]
    times["post-process"] = time.perf_counter() - start
    scale = upscaled[0].width / low[0].width
    return ChainResult(low, [bicubic(img, scale) for img in low], upscaled, times, label,
                       f"{sr.label}{' twice' if passes == 2 else ''}")


def save_chain(result: ChainResult, folder: str | Path, display: int | None = None) -> Path:
    """low/, bicubic/ and upscaled/ PNGs (same names), and comparison.png: titled columns as the Compare tab
    draws them, one row per image, low-res (enlarged without smoothing) | bicubic | upscaled."""
    folder = Path(folder)
    for name, imgs in (("low", result.low), ("bicubic", result.bicubic), ("upscaled", result.upscaled)):
        shutil.rmtree(folder / name, ignore_errors=True)  # a rerun with fewer images leaves none of the old ones
        (folder / name).mkdir(parents=True)
        for i, img in enumerate(imgs):
            img.save(folder / name / f"{i:03d}.png")
    titles = (f"generated {result.low[0].width}px", "bicubic", f"super-resolved {result.upscaled[0].width}px")
    columns = [Column(title, as_array(imgs), 0.0, imgs[0].width) for title, imgs in
               zip(titles, (result.low, result.bicubic, result.upscaled))]
    grid = comparison_grid(columns, display or result.upscaled[0].width, headers=[[t] for t in titles])
    Image.fromarray(grid).save(folder / "comparison.png")
    return folder / "comparison.png"


def as_array(images: list[Image.Image]) -> np.ndarray:
    """Pillow images of one size as uint8 N x H x W x C."""
    arr = np.stack([np.asarray(img) for img in images])
    return arr[..., None] if arr.ndim == 3 else arr
