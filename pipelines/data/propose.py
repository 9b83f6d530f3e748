"""The channels and size a dataset's images have, against those a config trains at: colour photos trained in grey,
or small images enlarged, are proposed the data's own (the Train tab offers the change; the preview says it).

Built-in sets are left alone: their presets pick their size on purpose (8-px digits trained at 16 px).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .transforms import BadImage, to_image

SAMPLED = 16  # images looked at, spread over the dataset


def spread(n: int, k: int) -> list[int]:
    """At most k indices evenly spread over n rows (the preview's grid shows the whole dataset, not its start)."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist() if n else []
COLOUR_SPREAD = 12  # a pixel whose channels differ by more than this (of 255) is coloured; JPEG noise stays below
COLOUR_SHARE = 0.01  # an image with at least this share of coloured pixels is a colour image


@dataclass
class Proposal:
    """Values for data.channels / data.image_size that suit the images better, each with its reason."""
    changes: dict[str, int] = field(default_factory=dict)  # {"data.channels": 3, ...}: the fields to set
    reasons: dict[str, str] = field(default_factory=dict)  # the same keys: why

    def only(self, paths) -> Proposal:
        """The proposal for the fields a form has (super-resolution has no channels field, for one)."""
        return Proposal({k: v for k, v in self.changes.items() if k in paths},
                        {k: v for k, v in self.reasons.items() if k in paths})


def is_colour(img: Image.Image) -> bool:
    """Whether an image has colour: an RGB file of grey pixels (a scan, a grey photo saved as RGB) does not."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return False
    small = np.asarray(img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)).astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    return float((spread > COLOUR_SPREAD).mean()) >= COLOUR_SHARE


def propose(images: list[Image.Image], channels: int, image_size: int) -> Proposal:
    """What `images` (a sample of a dataset) suggest for a config training at `channels` and `image_size`."""
    out = Proposal()
    if not images:
        return out
    coloured = sum(is_colour(img) for img in images)
    if channels == 1 and coloured * 4 >= len(images):  # a quarter or more in colour: the data are colour
        out.changes["data.channels"] = 3
        out.reasons["data.channels"] = (f"{coloured} of the {len(images)} images looked at are in colour, but channels "
                                        "is 1: training would see them grey")
    elif channels == 3 and coloured == 0:
        out.changes["data.channels"] = 1
        out.reasons["data.channels"] = (f"all {len(images)} images looked at are grey, but channels is 3: one "
                                        "channel trains the same images more cheaply")
    side = int(statistics.median(min(img.size) for img in images))
    if side < image_size:
        out.changes["data.image_size"] = max(8, side // 8 * 8)  # networks halve the size a few times: a multiple of 8
        out.reasons["data.image_size"] = (f"the images are about {side} px on their short side, but image_size is "
                                          f"{image_size}: they would be enlarged (blurred)")
    return out


def propose_for(cfg, workspace=None, records=None) -> Proposal:
    """The proposal for DataConfig `cfg`, from up to SAMPLED of its images (`records`: the source's, when read
    already). A built-in set gets none."""
    from . import BUILTIN, read_source

    if cfg.dataset in BUILTIN:
        return Proposal()
    if records is None:
        records = read_source(cfg, workspace=workspace).records
    images = []
    for i in spread(len(records), SAMPLED):
        try:
            images.append(to_image(records[i].image, cfg.max_megapixels))
        except BadImage:
            continue
    return propose(images, cfg.channels, cfg.image_size)
