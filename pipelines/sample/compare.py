"""Side by side: the same seeds (and prompt, sampler) from several checkpoints, or one checkpoint under several
samplers and step counts; and the labelled grid that shows them, one column each.

Checkpoints are loaded one at a time and released before the next, so comparing eight needs the memory of one.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..families import family_of
from .images import as_rgb, upscale_for_display
from .models import load_model, sample_model
from .request import SampleRequest


@dataclass
class Column:
    """One column of a comparison: what made the images, the images, and how long they took."""
    label: str
    images: np.ndarray
    seconds: float
    image_size: int
    path: str = ""
    meta: dict = field(default_factory=dict)


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compare_checkpoints(paths: list[str | Path], request: SampleRequest, device: str | torch.device = "cpu",
                        on_column: Callable[[int, int], None] | None = None) -> list[Column]:
    """The same seeds from each checkpoint in turn. The prompt goes to the models that take one (they need it), the
    class to the class-conditional ones; the others leave them out. A GAN ignores sampler and steps."""
    if not paths:
        raise ValueError("checkpoints: pick at least one")
    request.check()  # before any checkpoint is loaded
    columns = []
    for i, path in enumerate(paths):
        model = load_model(path, device)
        text = model.takes_prompt
        asked = request.but(class_label=request.class_label if model.num_classes else None,
                            prompt=request.prompt if text else None, negative_prompt=request.negative_prompt if text else "")
        start = time.perf_counter()
        images = sample_model(model, asked)
        run = model.meta.get("run")  # final/ and the last checkpoint share a step: the folder tells them apart
        label = f"{run} / {Path(path).name}" if run else Path(path).name
        kind = family_of(model.path).noun  # (the downloaded folder of a Hub id)
        columns.append(Column(label, images, time.perf_counter() - start, model.image_size, str(path), {**model.meta, "kind": kind}))
        del model
        release()  # before the next one is loaded
        if on_column:
            on_column(i + 1, len(paths))
    return columns


def compare_samplers(path: str | Path, settings: list[tuple[str, int]], request: SampleRequest,
                     device: str | torch.device = "cpu", on_column: Callable[[int, int], None] | None = None) -> list[Column]:
    """One checkpoint, the same seeds, each (sampler, steps) in turn, timed."""
    for sampler, steps in settings:
        request.but(sampler=sampler, steps=steps).check()
    spec = family_of(path)
    if spec is not None and "sampler" not in spec.sample_options:
        raise ValueError(f"checkpoint: {path} is a {spec.noun}: it has no sampler or steps to compare")
    model = load_model(path, device)
    if not model.takes_prompt:  # a prompt typed for other checkpoints is not this one's
        request = request.but(prompt=None, negative_prompt="")
    columns = []
    for i, (sampler, steps) in enumerate(settings):
        start = time.perf_counter()
        images = sample_model(model, request.but(sampler=sampler, steps=steps))
        seconds = time.perf_counter() - start
        columns.append(Column(f"{sampler}, {steps} steps", images, seconds, model.image_size, str(path), dict(model.meta)))
        if on_column:
            on_column(i + 1, len(settings))
    return columns


def comparison_grid(columns: list[Column], display: int | None = 128, headers: list[list[str]] | None = None,
                    pad: int = 4) -> np.ndarray:
    """One labelled column per entry, its images stacked. `display`: every image enlarged or reduced to that many
    pixels (a common size); None: each at its native size. `headers`: the lines above each column (default: its
    label, its resolution and its time)."""
    headers = headers or [[c.label, f"{c.image_size}px, {c.seconds:.1f}s"] for c in columns]
    cells = [upscale_for_display(c.images, display) if display else as_rgb(c.images) for c in columns]
    font = ImageFont.load_default(size=12)
    line_h = 15
    widths = [max(cell.shape[2], *(int(font.getlength(line)) + 2 for line in lines)) for cell, lines in zip(cells, headers)]
    header_h = line_h * max(len(lines) for lines in headers) + pad
    height = header_h + max(len(cell) * (cell.shape[1] + pad) for cell in cells) + pad
    canvas = Image.new("RGB", (sum(w + pad for w in widths) + pad, height), "white")
    draw, x = ImageDraw.Draw(canvas), pad
    for cell, lines, width in zip(cells, headers, widths):
        for j, line in enumerate(lines):
            draw.text((x, pad // 2 + j * line_h), line, fill="black", font=font)
        y = header_h
        for img in cell:
            canvas.paste(Image.fromarray(img), (x + (width - img.shape[1]) // 2, y))
            y += img.shape[0] + pad
        x += width + pad
    return np.asarray(canvas)
