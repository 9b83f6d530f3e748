"""One sampling request: what a person (a tab, the command line, the API) asks of any generating model.

A family's model uses the fields it has (a GAN no sampler, steps or guidance; a diffusion model no truncation;
only a text model a prompt). "Empty" form values (a class of -1, a truncation of 0, an empty prompt) become None
once, in `SampleRequest.of`, where the request is made.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .checks import check_sampling


class Cancelled(Exception):
    """A sampling callback asked to stop."""


@dataclass(frozen=True)
class SampleRequest:
    sampler: str = "dpm++"
    steps: int = 20
    num: int = 16
    seed: int = 0  # image i starts from the noise of seed + i
    class_label: int | None = None  # None: a class-conditional model cycles through its classes
    guidance: float = 1.0  # classifier-free guidance scale (1: none)
    truncation: float | None = None  # GAN: redraw z values beyond +-truncation
    prompt: str | None = None
    negative_prompt: str = ""
    batch_size: int = 64

    @classmethod
    def of(cls, **values) -> SampleRequest:
        """A request from form or command-line values, with their "empty" values made None and numbers typed."""
        def empty(v):
            return v is None or v == "" or (isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0)

        out = {k: v for k, v in values.items() if v is not None}
        if "class_label" in values:
            out["class_label"] = None if empty(values["class_label"]) else int(values["class_label"])
        if "truncation" in values:
            out["truncation"] = None if not values["truncation"] else float(values["truncation"])
        if "prompt" in values:
            out["prompt"] = values["prompt"].strip() if values["prompt"] and values["prompt"].strip() else None
        for name in ("steps", "num", "seed", "batch_size"):
            if name in out:
                out[name] = int(out[name])
        if "guidance" in out:
            out["guidance"] = float(out["guidance"])
        return cls(**out)

    def but(self, **changes) -> SampleRequest:
        return replace(self, **changes)

    def check(self, frames: int | None = None, seed_b: int | None = None) -> None:
        check_sampling(steps=self.steps, num=self.num, seed=self.seed, guidance=self.guidance, truncation=self.truncation,
                       frames=frames, seed_b=seed_b)
