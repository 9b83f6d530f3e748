"""Grids, labelled rows, strips, GIFs and MP4s of uint8 images, and writing sampling output (.png, .npy, folder)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_FONT_PX = 11  # the least; a larger image gets larger text (label_px)
LABEL_LINE_PX = 13  # a line of text of LABEL_FONT_PX (larger text: in proportion, line_px)
# Grids are shown scaled to fit a box a few hundred pixels high: text this fraction of the image's longer side stays
# about 11 px or more on screen down to 260 px (an SR strip 1,044 px wide shown 300 px wide).
LABEL_FRACTION = 1 / 24


def as_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def pil_images(images: np.ndarray) -> list[Image.Image]:
    """uint8 N x H x W x C arrays as Pillow images (one-channel ones as mode L)."""
    return [Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img) for img in images]


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """N x H x W x C uint8 -> one RGB image, ncols wide (default: square-ish)."""
    images = as_rgb(images)
    n, h, w, _ = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def upscale_for_display(images: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize to `size` pixels (small samples stay crisp on screen)."""
    if images.shape[1] == size:
        return as_rgb(images)
    return np.stack([np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.NEAREST)) for img in as_rgb(images)])


def _wrapped(text: str, width_px: int, font) -> list[str]:
    """`text` in lines that fit `width_px`, measured in the font (only a word wider than the line is cut)."""
    lines, line = [], ""
    for word in text.split():
        if font.getlength(f"{line} {word}".strip()) <= width_px:
            line = f"{line} {word}".strip()
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and font.getlength(word) > width_px:
            cut = next((k - 1 for k in range(2, len(word)) if font.getlength(word[:k]) > width_px), len(word) - 1)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    return [*lines, line] if line else lines or [""]


def label_px(width: int, height: int) -> int:
    """The text size of an image's labels: readable when the whole image is shown a few hundred pixels high."""
    return max(LABEL_FONT_PX, round(max(width, height) * LABEL_FRACTION))


def line_px(size: int) -> int:
    return round(size * LABEL_LINE_PX / LABEL_FONT_PX)


def captioned_grid(images: np.ndarray, ncols: int | None = None, captions: list[str] | None = None,
                   headers: list[str] | None = None, pad: int = 4, title: str | None = None) -> np.ndarray:
    """A grid with a caption under each image (its class or prompt), a header over each column ("LR", "bicubic",
    "SR", "HR") and a title over all ("epoch 3 · step 120"); text is wrapped to the width it has, and sized to the
    grid (label_px)."""
    images = as_rgb(images)
    n, h, w, _ = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    width = ncols * (w + pad) + pad
    size = label_px(width, nrows * (h + pad) + pad)
    font = ImageFont.load_default(size=size)
    words = [word for text in [*(captions or []), *(headers or [])] for word in text.split()]
    widest = max((font.getlength(word) for word in words), default=0)
    while widest > w and size > LABEL_FONT_PX:  # smaller text rather than words cut in two ("hors" over "e"), down to
        # the smallest readable size; measured again, as text width is not quite proportional to the size
        size = max(LABEL_FONT_PX, min(size - 1, int(size * w / widest)))
        font = ImageFont.load_default(size=size)
        widest = max(font.getlength(word) for word in words)
    lead = line_px(size)  # px per line of text
    lines = [_wrapped(c, w, font) for c in captions] if captions else [[] for _ in range(n)]
    row_text = [max((len(lines[i]) for i in range(r * ncols, min(n, (r + 1) * ncols))), default=0) * lead
                for r in range(nrows)]
    title_lines = _wrapped(title, width - 2 * pad, font) if title else []
    header_lines = [_wrapped(t, w, font) for t in headers] if headers else []
    header_top = pad + len(title_lines) * lead
    top = header_top + max((len(x) for x in header_lines), default=0) * lead if title_lines or header_lines else 0
    height = top + pad + sum(h + t + pad for t in row_text)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)

    def centred(text_lines: list[str], x: int, y: int) -> None:
        for k, line in enumerate(text_lines):
            draw.text((x + (w - font.getlength(line)) / 2, y + k * lead), line, fill="black", font=font)

    for k, line in enumerate(title_lines):
        draw.text((pad, pad + k * lead), line, fill="black", font=font)
    for c, header in enumerate(header_lines):
        centred(header, pad + c * (w + pad), header_top)
    y = top + pad
    for r in range(nrows):
        for c in range(ncols):
            i = r * ncols + c
            if i < n:
                x = pad + c * (w + pad)
                canvas.paste(Image.fromarray(images[i]), (x, y))
                centred(lines[i], x, y + h)
        y += h + row_text[r] + pad
    return np.asarray(canvas)


def save_grid(images: np.ndarray, path: str | Path, ncols: int | None = None, min_cell: int = 64,
              captions: list[str] | None = None, headers: list[str] | None = None, title: str | None = None) -> Path:
    """Save a grid, enlarging tiny images so a person can see them; with captions, column headers and a title if
    given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if images.shape[1] < min_cell:
        images = upscale_for_display(images, min_cell)
    grid = captioned_grid(images, ncols, captions, headers, title=title) if captions or headers or title \
        else make_grid(images, ncols)
    Image.fromarray(grid).save(path)
    return path


def labelled_rows(rows: list[tuple[str, np.ndarray]], display: int) -> np.ndarray:
    """One row per (label, images), every image at `display` pixels, the label written on the left."""
    label_w = 8 + 7 * max(len(label) for label, _ in rows)
    grids = [make_grid(upscale_for_display(imgs, display), ncols=len(imgs)) for _, imgs in rows]
    width = label_w + max(g.shape[1] for g in grids)
    canvas = Image.new("RGB", (width, sum(g.shape[0] for g in grids)), "white")
    draw, y = ImageDraw.Draw(canvas), 0
    for (label, _), grid in zip(rows, grids):
        canvas.paste(Image.fromarray(grid), (label_w, y))
        draw.text((4, y + grid.shape[0] // 2 - 6), label, fill="black")
        y += grid.shape[0]
    return np.asarray(canvas)


def save_gif(frames: np.ndarray, path: str | Path, display: int = 128, ms_per_frame: int = 120) -> Path:
    """An animation that plays the frames forward then back."""
    path = Path(path)
    big = upscale_for_display(frames, max(display, frames.shape[1]))
    seq = [Image.fromarray(f) for f in list(big) + list(big[-2:0:-1])]
    seq[0].save(path, save_all=True, append_images=seq[1:], duration=ms_per_frame, loop=0)
    return path


def save_mp4(frames: np.ndarray, path: str | Path, display: int = 256, fps: int = 8) -> Path:
    """An H.264 video that plays the frames forward then back (ffmpeg from the imageio-ffmpeg package)."""
    import imageio.v2 as imageio

    path = Path(path)
    size = max(16, (max(display, frames.shape[1]) + 15) // 16 * 16)  # H.264 encoders want multiples of 16
    big = upscale_for_display(frames, size)
    imageio.mimwrite(path, list(big) + list(big[-2:0:-1]), fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                     macro_block_size=16)
    return path


def save_output(images: np.ndarray, out: str | Path) -> Path:
    """`.png`: a grid; `.npy`: an N x H x W x C uint8 array; anything else: a folder of PNGs."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        return save_grid(images, out)
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, images)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(pil_images(images)):
        img.save(out / f"{i:04d}.png")
    return out
