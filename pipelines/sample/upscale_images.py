"""Upscaling image files: any Pillow mode (alpha, grayscale, 16-bit), size limits, any output scale, folders.

The model sees RGB; grayscale is repeated into three channels and averaged back; an alpha channel goes
through the model on its own (as a gray image) so its edges are as sharp as the colours'; 16-bit grayscale
stays 16-bit. A model-scale result is resized with Lanczos to any other `outscale`.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..data.transforms import IMAGE_SUFFIXES
from ..families import FAMILIES
from .checks import UpscaleError, check_tiling

MAX_INPUT_PIXELS = 16_777_216  # 16 MP (4096 x 4096) in
MAX_OUTPUT_PIXELS = 268_435_456  # 256 MP (16384 x 16384) out
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def load_upscaler(path: str | Path, device: str | torch.device = "cpu", half: bool = False):
    """The super-resolution model at `path` (a run folder, a model folder or file), loaded by the family whose
    models upscale (`half`: in float16, on a GPU); a Hub id (`user/name`) is downloaded first."""
    from ..ecosystem.hub import local_folder

    spec = next(s for s in FAMILIES.values() if s.kind == "upscaler")
    return spec.model_class().load(local_folder(path), device, half=half)


def open_checked(path: str | Path, outscale: float, max_input: int = MAX_INPUT_PIXELS,
                 max_output: int = MAX_OUTPUT_PIXELS) -> Image.Image:
    """Open an image after checking its declared size (before decoding it: a decompression bomb is refused
    from its header)."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            check_size(w, h, outscale, max_input, max_output)
            img.load()
            return ImageOps.exif_transpose(img)  # a phone photo's orientation tag, applied (a copy)
    except Image.DecompressionBombError as exc:
        raise UpscaleError(f"too many pixels ({exc})") from None
    except UpscaleError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        reason = "not an image file" if "cannot identify" in str(exc) else f"broken image ({exc})"
        raise UpscaleError(reason) from None


def check_size(w: int, h: int, outscale: float, max_input: int = MAX_INPUT_PIXELS, max_output: int = MAX_OUTPUT_PIXELS) -> None:
    if w * h > max_input:
        raise UpscaleError(f"the image is {w} x {h} ({w * h:,} pixels); the input limit is {max_input:,} pixels")
    out_w, out_h = round(w * outscale), round(h * outscale)
    if out_w * out_h > max_output:
        raise UpscaleError(f"x{outscale:g} would make {out_w} x {out_h} ({out_w * out_h:,} pixels); "
                           f"the output limit is {max_output:,} pixels: lower the output scale")
    if out_w < 1 or out_h < 1:
        raise UpscaleError(f"x{outscale:g} makes an empty image")


def _to_tensor(arr: np.ndarray, top: float) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / top)
    x = x[:, :, None] if x.ndim == 2 else x
    return x.permute(2, 0, 1)[None].expand(-1, 3, -1, -1) if x.shape[2] == 1 else x.permute(2, 0, 1)[None]


def _run(upscaler, arr: np.ndarray, top: float, gray: bool, opts: dict, dtype=torch.uint8) -> np.ndarray:
    """H x W (x 3) array with values up to `top` -> the model-scale result, H x W (x 3), as 8-bit values (or
    with dtype int32, 16-bit ones)."""
    y = upscaler.run(_to_tensor(arr, top).contiguous(), dtype=dtype, gray=gray, **opts)[0]
    return (y[0] if gray else y.permute(1, 2, 0)).numpy()


def upscale_image(upscaler, img: Image.Image, outscale: float | None = None, tile: int = 256,
                  tile_pad: int = 16, pre_pad: int = 0, progress: Callable[[int, int], None] | None = None) -> Image.Image:
    """Upscale one Pillow image by `outscale` (default: the model's scale), keeping its kind (alpha, gray, 16-bit)."""
    check_tiling(tile, tile_pad, pre_pad, outscale)
    outscale = outscale or upscaler.scale
    check_size(*img.size, outscale)
    opts = {"tile": tile, "tile_pad": tile_pad, "pre_pad": pre_pad, "progress": progress}
    size = (round(img.width * outscale), round(img.height * outscale))
    if img.mode in SIXTEEN_BIT:
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        out = Image.fromarray(_run(upscaler, arr, top, True, opts, torch.int32).astype(np.uint16))  # stays 16-bit
        return out if out.size == size else out.convert("I").resize(size, Image.Resampling.LANCZOS).convert("I;16")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La")
    gray = img.mode in ("L", "LA", "1")
    colour = img.convert("L" if gray else "RGB")
    result = _resize(Image.fromarray(_run(upscaler, np.asarray(colour), 255.0, gray, opts)), size)
    if has_alpha:
        alpha = Image.fromarray(_run(upscaler, np.asarray(img.getchannel("A")), 255.0, True, opts))
        result.putalpha(_resize(alpha, size))
    return result


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def to_8bit(img: Image.Image) -> Image.Image:
    return img.convert("I").point(lambda v: v / 257).convert("L") if img.mode in SIXTEEN_BIT else img


def bicubic(img: Image.Image, outscale: float) -> Image.Image:
    """The plain resize an upscaler is compared with."""
    if img.mode in SIXTEEN_BIT:
        img = to_8bit(img)
    elif img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB")
    return img.resize((round(img.width * outscale), round(img.height * outscale)), Image.Resampling.BICUBIC)


@dataclass
class UpscaleReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    seconds: float = 0.0


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def upscale_path(upscaler, source: str | Path, output: str | Path, outscale: float | None = None, tile: int = 256,
                 tile_pad: int = 16, pre_pad: int = 0, progress: bool = True) -> UpscaleReport:
    """An image to an image file (or into a folder), or a folder recursively to a folder with the same
    structure (PNG files). Files that are not usable images are listed in the report, never fatal."""
    from tqdm.auto import tqdm

    check_tiling(tile, tile_pad, pre_pad, outscale)  # once, not as a failure of every file
    source, output = Path(source), Path(output)
    if not source.exists():
        raise FileNotFoundError(f"--input: {source} does not exist")
    if source.is_dir():
        jobs, taken = [], set()
        for p in image_files(source):
            target = output / p.relative_to(source).with_suffix(".png")
            if target in taken:  # a.jpg and a.png: the second keeps its extension in the name
                target = target.with_name(f"{p.stem}_{p.suffix.lstrip('.')}.png")
            taken.add(target)
            jobs.append((p, target))
        if not jobs:
            raise UpscaleError(f"--input: {source} holds no files")
    else:
        target = output if output.suffix.lower() in IMAGE_SUFFIXES else output / f"{source.stem}.png"
        jobs = [(source, target)]
    report, start = UpscaleReport(), time.perf_counter()
    tiles = tqdm(unit="tile", disable=not progress or len(jobs) > 1)  # one image: a bar over its tiles

    def tile_done(done: int, total: int) -> None:
        tiles.total = total
        tiles.update(done - tiles.n)

    for src, dst in tqdm(jobs, unit="image", disable=not progress or len(jobs) < 2):
        try:
            img = open_checked(src, outscale or upscaler.scale)
            result = upscale_image(upscaler, img, outscale, tile, tile_pad, pre_pad, progress=tile_done)
            save_atomic(result, dst)
        except UpscaleError as exc:
            report.failed.append((str(src), str(exc)))
            continue
        except (RuntimeError, ValueError, OSError) as exc:  # e.g. an image too small for the model's padding
            report.failed.append((str(src), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            continue
        report.written.append(dst)
    tiles.close()
    report.seconds = time.perf_counter() - start
    return report


FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".png": "PNG"}


def save_atomic(img: Image.Image, path: Path) -> None:
    """Save under a temporary name, then rename: a killed run leaves no half-written image under the real name.
    Formats without 16-bit or alpha get 8 bits and the image on white."""
    fmt = FORMATS.get(path.suffix.lower(), "PNG")
    if fmt not in ("PNG", "TIFF"):
        img = to_8bit(img)
        if img.mode in ("RGBA", "LA") and fmt != "WEBP":
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, img.convert("RGBA")).convert("RGB" if img.mode == "RGBA" else "L")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        img.save(tmp, format=fmt)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
