"""The numbers of a sampling or upscaling request, checked once in the engine: the command line, the studio's tabs
and its API all pass through here, so a bad value is refused the same way everywhere, naming the field.

Without these, steps = 0 divided by zero, a negative tile upscaled into uninitialised memory, and a NaN guidance
returned noise as a success.
"""
from __future__ import annotations

import math
from numbers import Real

MAX_NUM = 10_000  # images per request; their uint8 arrays are all held at once
MAX_FRAMES = 1_000
MAX_SEED = 2**63 - 1 - MAX_NUM  # image i uses seed + i, and torch's seeds are 64-bit
MIN_TILE = 8  # smaller tiles are a model call per few pixels: hours for one photo


class UpscaleError(ValueError):
    """An input that cannot be upscaled; the message says why."""


def _number(name: str, value, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value}")
    if integer and value != int(value):
        raise ValueError(f"{name}: must be a whole number, got {value:g}")
    return value


def check_range(name: str, value, low: float | None = None, high: float | None = None, integer: bool = False,
                above: bool = False) -> None:
    """`value` lies in [low, high] (or (low, high] with `above`); None for a bound leaves that side open."""
    value = _number(name, value, integer)
    too_low = low is not None and (value <= low if above else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else f"above {low:g}" if above else f"at least {low:g}"
        hi = "" if high is None else f"at most {high:g}"
        raise ValueError(f"{name}: must be {' and '.join(s for s in (lo, hi) if s)}, got {value:g}")


def check_sampling(steps=None, num=None, seed=None, guidance=None, truncation=None, frames=None, seed_b=None) -> None:
    """The numbers of a generation or interpolation request; None skips a field (the model does not use it)."""
    if steps is not None:
        check_range("steps", steps, 1, 1000, integer=True)
    if num is not None:
        check_range("num", num, 1, MAX_NUM, integer=True)
    for name, seed_value in (("seed", seed), ("seed_b", seed_b)):
        if seed_value is not None:
            check_range(name, seed_value, 0, MAX_SEED, integer=True)
    if guidance is not None:
        check_range("guidance", guidance, 0, 100)
    if truncation is not None:
        check_range("truncation", truncation, 0)
    if frames is not None:
        check_range("frames", frames, 2, MAX_FRAMES, integer=True)


def check_tiling(tile=256, tile_pad=16, pre_pad=0, outscale=None) -> None:
    """The numbers of an upscaling request; `outscale` None or 0 means the model's own scale."""
    _number("tile", tile, integer=True)
    if tile != 0 and tile < MIN_TILE:
        raise ValueError(f"tile: must be 0 (the whole image at once) or at least {MIN_TILE}, got {tile:g}")
    check_range("tile_pad", tile_pad, 0, 1024, integer=True)
    check_range("pre_pad", pre_pad, 0, 1024, integer=True)
    if outscale:
        check_range("outscale", outscale, 0, 16, above=True)
