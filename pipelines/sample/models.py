"""Any generating checkpoint behind one interface, whatever family wrote it.

`load_model` asks the family registry which family wrote a folder and loads it with that family's model class;
`sample_model` and `interpolate_model` hand a SampleRequest to the model, which uses the fields it has.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..ecosystem.hub import local_folder
from ..families import FAMILIES, family_of
from .request import SampleRequest


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """The generating model saved in a folder (a run's checkpoint, best/ or final/, or a diffusers folder), or on
    the Hub (`user/name`: downloaded into the Hub cache first)."""
    path = local_folder(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint: {path} is not a folder")
    spec = family_of(path)
    if spec is None:
        kinds = ", nor a ".join(s.model_class().holds for s in FAMILIES.values())
        raise FileNotFoundError(f"checkpoint: {path} holds no {kinds}")
    if spec.kind == "upscaler":
        raise ValueError(f"checkpoint: {path} is a {spec.noun} model: it upscales images rather than generating "
                         "them (python -m pipelines upscale, or the Upscale tab)")
    return spec.model_class().load(path, device)


def sample_model(model, request: SampleRequest | None = None, callback: Callable[[dict], bool | None] | None = None,
                 **fields) -> np.ndarray:
    """uint8 N x H x W x C images; image i from seed `request.seed + i`. `fields` make the request when none is given."""
    request = request or SampleRequest(**fields)
    request.check()
    if model.takes_prompt and not request.prompt:
        raise ValueError(f"prompt: {model.path} is a text-to-image model; give a prompt")
    if request.prompt and not model.takes_prompt:
        raise ValueError(f"prompt: {model.path} does not take prompts (it is not a text-to-image model)")
    return model.sample(request, callback)


def interpolate_model(model, request: SampleRequest, seed_b: int, frames: int = 8) -> np.ndarray:
    """Frames between the seeds `request.seed` and `seed_b` (a text model: of `request.prompt`)."""
    request.check(frames=frames, seed_b=seed_b)
    if model.takes_prompt and not request.prompt:
        raise ValueError(f"prompt: {model.path} is a text-to-image model; give a prompt")
    return model.interpolate(request, seed_b, frames)


def interpolate_prompts_model(model, request: SampleRequest, prompt_b: str, frames: int = 8) -> np.ndarray:
    """Frames from `request.prompt` to `prompt_b`, the same starting noise: models that take prompts only."""
    request.check(frames=frames)
    if not model.takes_prompt:
        raise ValueError(f"checkpoint: {model.path} is not a text-to-image model; only those interpolate between prompts")
    if not (request.prompt or "").strip() or not (prompt_b or "").strip():
        raise ValueError("prompt_b: give both prompts" if (request.prompt or "").strip() else "prompt_a: give both prompts")
    return model.interpolate_prompts(request, prompt_b, frames)
