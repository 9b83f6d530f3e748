"""Prompt alignment on the built-in `shapes` data: does a generated image show the colour, shape and background
its caption ("a red circle on a blue background") asks for?

The checker reads an image the way the data was drawn: the border is background; pixels far from the
background colour are the shape; colours snap to the nearest colour of the palette; the shape follows from how
much of its bounding box it fills (square about 1, circle about pi/4, triangle about 1/2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..data.builtin import COLOURS, SHAPES

CAPTION = re.compile(r"^an? (\w+) (\w+) on an? (\w+) background$")
PALETTE = np.array(list(COLOURS.values()), dtype=float)
NAMES = list(COLOURS)


@dataclass
class Reading:
    colour: str | None
    shape: str | None
    background: str


def nearest_colour(rgb: np.ndarray) -> str:
    return NAMES[int(np.argmin(((PALETTE - rgb) ** 2).sum(1)))]


def read_shape(image: np.ndarray) -> Reading:
    """What an H x W x 3 uint8 image shows."""
    img = image.astype(float)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = np.median(border, axis=0)
    distance = np.sqrt(((img - background) ** 2).sum(-1))
    mask = distance > 80  # well away from the background (palette colours are at least ~100 apart)
    if mask.sum() < 0.02 * mask.size:
        return Reading(None, None, nearest_colour(background))
    colour = nearest_colour(np.median(img[mask], axis=0))
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    fill = mask.sum() / box
    shape = "square" if fill > 0.9 else "circle" if fill > 0.66 else "triangle"
    return Reading(colour, shape, nearest_colour(background))


def parse_caption(caption: str) -> tuple[str, str, str]:
    m = CAPTION.match(caption.strip().lower())
    if not m or m.group(1) not in COLOURS or m.group(2) not in SHAPES or m.group(3) not in COLOURS:
        raise ValueError(f"not a shapes caption ('a <colour> <shape> on a <colour> background'): {caption!r}")
    return m.group(1), m.group(2), m.group(3)


def alignment(images: np.ndarray, captions: list[str]) -> dict[str, float]:
    """Shares of images whose colour, shape, background, and all three match their captions."""
    hits = {"colour": 0, "shape": 0, "background": 0, "all": 0}
    for image, caption in zip(images, captions):
        colour, shape, background = parse_caption(caption)
        seen = read_shape(image)
        ok = {"colour": seen.colour == colour, "shape": seen.shape == shape, "background": seen.background == background}
        ok["all"] = all(ok.values())
        for key, value in ok.items():
            hits[key] += value
    return {key: value / max(len(captions), 1) for key, value in hits.items()}
