"""Image decoding and preprocessing with Pillow: odd modes converted, crop, resize, to uint8 arrays."""
from __future__ import annotations

from pathlib import Path

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .source import Unavailable

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# A truncated file must fail loudly so that it is skipped and counted, not half-read.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Larger images are refused from their header, before a byte of pixels is decoded (Pillow itself only warns
# until twice its own limit).
MAX_MEGAPIXELS = 100


class BadImage(Exception):
    """An input that cannot be used as an image; the message says why."""


def open_image(path, max_megapixels: float = MAX_MEGAPIXELS) -> Image.Image:
    """Open and fully decode an image file (a path or a binary file object), upright as its EXIF orientation
    says, or raise BadImage with the reason."""
    try:
        with Image.open(path) as img:
            megapixels = img.width * img.height / 1e6
            if megapixels > max_megapixels:
                raise BadImage(f"too many pixels: {img.width} x {img.height} ({megapixels:.0f} megapixels, "
                               f"the limit is {max_megapixels:g})")
            img.load()
            return ImageOps.exif_transpose(img)  # a phone photo's orientation tag, applied (a copy)
    except Image.DecompressionBombError as exc:
        raise BadImage(f"too many pixels ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = "not an image file" if "cannot identify" in str(exc) else str(exc) or type(exc).__name__
        raise BadImage(reason) from None


def to_image(item, max_megapixels: float = MAX_MEGAPIXELS) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (Path, str)):
        return open_image(item, max_megapixels)
    if isinstance(item, dict) and (item.get("bytes") or item.get("path")):
        return open_image(io.BytesIO(item["bytes"]) if item.get("bytes") else item["path"], max_megapixels)
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    if isinstance(item, Unavailable):
        raise BadImage(item.reason)
    raise BadImage(f"unsupported image value of type {type(item).__name__}")


def normalise_mode(img: Image.Image, channels: int) -> Image.Image:
    """Bring any Pillow mode (16-bit, palette, alpha, CMYK...) to 'L' or 'RGB'."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become white rather than whatever colour they happen to store.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def center_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def preprocess(img: Image.Image, size: int, channels: int, resize: str = "bicubic", center_crop: bool = True) -> np.ndarray:
    """PIL image -> uint8 array (size, size, channels)."""
    img = normalise_mode(img, channels)
    if center_crop:
        img = center_square(img)
    if img.size != (size, size):
        img = img.resize((size, size), RESAMPLE[resize])
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr
