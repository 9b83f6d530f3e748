"""Low-resolution images made from high-resolution ones: a plain resize, or Real-ESRGAN's random two-stage degradation.

Pure functions on uint8 H x W x C arrays (C = 1 or 3). Every random choice comes from the numpy Generator passed
in, so a seed always gives the same image. The Real-ESRGAN settings are those of its official training config
(options/train_realesrgan_x4plus.yml, realesrgan_dataset.py and RealESRGANModel.feed_data).
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import special

from .lr_options import DEGRADATIONS as KINDS
from .lr_options import RESIZE_METHODS as METHODS

KERNEL_SIZES = list(range(7, 22, 2))
KERNEL_TYPES = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KERNEL_PROBS = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
BETAG_RANGE, BETAP_RANGE = (0.5, 4.0), (1.0, 2.0)
RESIZE_MODES = ["area", "bilinear", "bicubic"]
FINAL_SINC_PROB = 0.8


@dataclass(frozen=True)
class Stage:
    """The random ranges of one degradation stage."""
    blur_prob: float
    sigma: tuple[float, float]
    resize_prob: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]
    noise_sigma: tuple[float, float]  # Gaussian, on a 0-255 scale
    poisson_scale: tuple[float, float]
    sinc_prob: float = 0.1
    gaussian_prob: float = 0.5
    gray_prob: float = 0.4
    jpeg_quality: tuple[float, float] = (30, 95)


STAGE1 = Stage(1.0, (0.2, 3.0), (0.2, 0.7, 0.1), (0.15, 1.5), (1, 30), (0.05, 3.0))
STAGE2 = Stage(0.8, (0.2, 1.5), (0.3, 0.4, 0.3), (0.3, 1.2), (1, 25), (0.05, 2.5))


def _check(hr: np.ndarray, scale: int) -> np.ndarray:
    if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] not in (1, 3):
        raise ValueError(f"expected a uint8 H x W x C array with C = 1 or 3, got {hr.dtype} {hr.shape}")
    if scale < 1 or hr.shape[0] < scale or hr.shape[1] < scale:
        raise ValueError(f"image of {hr.shape[1]} x {hr.shape[0]} px is too small for scale {scale}")
    return hr


def crop_to_multiple(hr: np.ndarray, scale: int) -> np.ndarray:
    """Top-left crop so that height and width are multiples of scale (LR pixels then cover whole HR blocks)."""
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    return hr[:h, :w]


def resize_array(arr: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """Pillow resize of a uint8 H x W x C array (antialiased when downscaling, like MATLAB imresize)."""
    if method not in METHODS:
        raise ValueError(f"--method: unknown value {method!r} (choose from {', '.join(METHODS)})")
    out = np.asarray(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).resize((width, height), METHODS[method]))
    return out[:, :, None] if out.ndim == 2 else out


def bicubic_degrade(hr: np.ndarray, scale: int, method: str = "cubic") -> np.ndarray:
    hr = _check(hr, scale)
    return resize_array(hr, hr.shape[0] // scale, hr.shape[1] // scale, method)


# ----------------------------------------------------------------- blur kernels (numpy, float64)

def _quadratic_form(size: int, sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on the kernel grid, Sigma a Gaussian covariance rotated by theta."""
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    grid = np.stack(np.meshgrid(ax, ax), -1)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    inv_cov = np.linalg.inv(rot @ np.diag([sig_x ** 2, sig_y ** 2]) @ rot.T)
    return np.sum((grid @ inv_cov) * grid, -1)


def _random_beta(rng: np.random.Generator, lo: float, hi: float) -> float:
    # Upstream picks the side of 1 first, so shapes below and above 1 are equally likely.
    return rng.uniform(lo, 1) if rng.uniform() < 0.5 else rng.uniform(1, hi)


def sinc_kernel(cutoff: float, size: int) -> np.ndarray:
    """Circularly symmetric low-pass (2-D sinc) kernel; it imitates ringing and overshoot artifacts."""
    centre = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(xx - centre, yy - centre)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    kernel[size // 2, size // 2] = cutoff ** 2 / (4 * np.pi)
    return kernel / kernel.sum()


def random_blur_kernel(rng: np.random.Generator, stage: Stage) -> np.ndarray:
    size = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < stage.sinc_prob:
        return sinc_kernel(rng.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi), size)
    kind = KERNEL_TYPES[rng.choice(len(KERNEL_TYPES), p=KERNEL_PROBS)]
    sig_x = rng.uniform(*stage.sigma)
    if kind.endswith("aniso"):
        sig_y, theta = rng.uniform(*stage.sigma), rng.uniform(-np.pi, np.pi)
    else:
        sig_y, theta = sig_x, 0.0
    q = _quadratic_form(size, sig_x, sig_y, theta)
    if kind.startswith("generalized"):
        kernel = np.exp(-0.5 * q ** _random_beta(rng, *BETAG_RANGE))
    elif kind.startswith("plateau"):
        kernel = 1.0 / (q ** _random_beta(rng, *BETAP_RANGE) + 1.0)
    else:
        kernel = np.exp(-0.5 * q)
    return kernel / kernel.sum()


# ----------------------------------------------------------------- operations on 1 x C x H x W float tensors in [0, 1]

def filter2d(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    k = torch.from_numpy(kernel.astype(np.float32))
    pad, channels = k.shape[-1] // 2, x.shape[1]
    # Reflect padding needs the image to be larger than the pad; tiny images fall back to edge replication.
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    return F.conv2d(x, k.expand(channels, 1, *k.shape), groups=channels)


def resize(x: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    size = (max(1, height), max(1, width))
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=shrinking)


def _random_scale(rng: np.random.Generator, stage: Stage) -> float:
    updown = rng.choice(3, p=stage.resize_prob)
    if updown == 0:
        return rng.uniform(1, stage.resize_range[1])
    return rng.uniform(stage.resize_range[0], 1) if updown == 1 else 1.0


def _random_mode(rng: np.random.Generator) -> str:
    return RESIZE_MODES[rng.integers(len(RESIZE_MODES))]


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor([0.2989, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _poisson_noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shot noise whose photon count is the number of distinct levels, rounded up to a power of two (as upstream)."""
    x = torch.clamp((x * 255.0).round(), 0, 255) / 255.0
    levels = 2.0 ** math.ceil(math.log2(len(torch.unique(x))))
    return torch.poisson(x * levels, generator=gen) / levels - x


def add_noise(x: torch.Tensor, rng: np.random.Generator, gen: torch.Generator, stage: Stage) -> torch.Tensor:
    gaussian = rng.uniform() < stage.gaussian_prob
    strength = rng.uniform(*(stage.noise_sigma if gaussian else stage.poisson_scale))
    gray = rng.uniform() < stage.gray_prob  # the same noise in every channel
    if gaussian:
        shape = (1, 1, *x.shape[-2:]) if gray else tuple(x.shape)
        noise = torch.randn(shape, generator=gen, dtype=x.dtype) * (strength / 255.0)
    else:
        noise = _poisson_noise(_gray(x) if gray else x, gen) * strength
    return torch.clamp(x + noise, 0, 1)


def jpeg(x: torch.Tensor, rng: np.random.Generator, stage: Stage) -> torch.Tensor:
    quality = int(round(rng.uniform(*stage.jpeg_quality)))
    arr = to_uint8(x)
    buffer = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return to_tensor(np.asarray(Image.open(buffer)).reshape(arr.shape))


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return torch.clamp((x[0] * 255.0).round(), 0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def realesrgan_degrade(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, resize, noise, JPEG, twice, then resize to H//scale x W//scale (with a sinc filter) around a last JPEG."""
    hr = _check(hr, scale)
    h, w = hr.shape[:2]
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 63 - 1)))
    with torch.no_grad():
        x = filter2d(to_tensor(hr), random_blur_kernel(rng, STAGE1))
        s = _random_scale(rng, STAGE1)
        x = resize(x, int(h * s), int(w * s), _random_mode(rng))
        x = add_noise(x, rng, gen, STAGE1)
        x = jpeg(torch.clamp(x, 0, 1), rng, STAGE1)

        if rng.uniform() < STAGE2.blur_prob:
            x = filter2d(x, random_blur_kernel(rng, STAGE2))
        s = _random_scale(rng, STAGE2)
        x = resize(x, int(h / scale * s), int(w / scale * s), _random_mode(rng))
        x = add_noise(x, rng, gen, STAGE2)

        final_sinc = None
        if rng.uniform() < FINAL_SINC_PROB:
            final_sinc = sinc_kernel(rng.uniform(np.pi / 3, np.pi), int(rng.choice(KERNEL_SIZES)))

        def resize_back(t: torch.Tensor) -> torch.Tensor:
            t = resize(t, h // scale, w // scale, _random_mode(rng))
            return t if final_sinc is None else filter2d(t, final_sinc)

        # Upstream tries both orders; sinc before JPEG or after it.
        if rng.uniform() < 0.5:
            x = jpeg(torch.clamp(resize_back(x), 0, 1), rng, STAGE2)
        else:
            x = resize_back(jpeg(torch.clamp(x, 0, 1), rng, STAGE2))
        return to_uint8(x)


def degrade(hr: np.ndarray, scale: int, kind: str, method: str, rng: np.random.Generator) -> np.ndarray:
    """The LR image of hr: `kind` "bicubic" (a Pillow resize with `method`) or "realesrgan" (rng decides everything)."""
    if kind == "bicubic":
        return bicubic_degrade(hr, scale, method)
    if kind == "realesrgan":
        return realesrgan_degrade(hr, scale, rng)
    raise ValueError(f"--degradation: unknown value {kind!r} (choose from {', '.join(KINDS)})")


def image_seed(relative_name: str, scale: int, seed: int = 0) -> int:
    """A seed per (image, scale) that does not depend on the processing order or on the number of workers."""
    digest = hashlib.sha256(f"{seed}:{scale}:{relative_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
