"""Training objectives of the diffusion families, one module each (ddpm, flow, edm), all of one shape:

- `training_pair(x0, noise) -> (the UNet's input, its timestep, the target of its output, a loss weight per image)`,
  so the loss is `weight * |unet(input, timestep) - target|^2` whatever the objective;
- `scheduler`: the diffusers scheduler saved beside the UNet, which names the objective in a saved folder and
  carries what its samplers need (betas, shift, sigma_data);
- its module's `SAMPLERS` and `make_sampler(name, saved_scheduler)`.
"""
from __future__ import annotations

import json
from pathlib import Path

import diffusers

from ..config import OBJECTIVE_SAMPLERS as SAMPLERS_BY_OBJECTIVE
from . import ddpm, edm, flow

MODULES = {"ddpm": ddpm, "flow": flow, "edm": edm}
# Scheduler classes a saved folder may hold (a published pipeline's too); nothing else is instantiated from a file.
SAVED_SCHEDULERS = {"DDPMScheduler": "ddpm", "DDIMScheduler": "ddpm", "PNDMScheduler": "ddpm",
                    "DPMSolverMultistepScheduler": "ddpm", "EulerDiscreteScheduler": "ddpm",
                    "FlowMatchEulerDiscreteScheduler": "flow", "EDMDPMSolverMultistepScheduler": "edm"}


def make_objective(diffusion, sigma_data: float | None = None, schedule=None):
    """The objective of a `diffusion` config section; EDM needs the data's standard deviation, and a ddpm fine-tune
    keeps its source's noise `schedule` (a DDPMScheduler)."""
    if diffusion.objective == "edm":
        return edm.EDMObjective(diffusion, diffusion.sigma_data or sigma_data or 0.5)
    if diffusion.objective == "flow":
        return flow.FlowObjective(diffusion)
    return ddpm.DDPMObjective(diffusion, schedule)


def objective_of(scheduler) -> str:
    return SAVED_SCHEDULERS.get(type(scheduler).__name__, "ddpm")


def samplers_of(scheduler) -> tuple[str, ...]:
    return SAMPLERS_BY_OBJECTIVE[objective_of(scheduler)]


def deterministic_sampler(scheduler) -> str:
    return MODULES[objective_of(scheduler)].DETERMINISTIC


def make_sampler(name: str, saved):
    """Sampler `name` for a model whose saved (training) scheduler is `saved`."""
    objective = objective_of(saved)
    if name not in SAMPLERS_BY_OBJECTIVE[objective]:
        raise ValueError(f"sampler: {name!r} does not sample {objective} models; "
                         f"allowed: {', '.join(SAMPLERS_BY_OBJECTIVE[objective])}")
    return MODULES[objective].make_sampler(name, saved)


def load_scheduler(folder: str | Path):
    """The scheduler saved in `folder` (scheduler_config.json), of a class listed in SAVED_SCHEDULERS."""
    config = json.loads((Path(folder) / "scheduler_config.json").read_text())
    name = config.get("_class_name")
    if name not in SAVED_SCHEDULERS:
        raise ValueError(f"checkpoint: {folder} holds a {name} scheduler; known: {', '.join(SAVED_SCHEDULERS)}")
    return getattr(diffusers, name).from_pretrained(folder)


def samplers_of_folder(folder: str | Path) -> tuple[str, ...] | None:
    """The samplers a saved diffusion folder's objective can use, read from its scheduler config without loading
    the model; None for a folder that holds no diffusion scheduler (a GAN, an upscaler, a typo)."""
    for candidate in (Path(folder) / "scheduler", Path(folder).parent / "scheduler"):
        try:
            name = json.loads((candidate / "scheduler_config.json").read_text()).get("_class_name")
        except (OSError, ValueError):
            continue
        return SAMPLERS_BY_OBJECTIVE[SAVED_SCHEDULERS.get(name, "ddpm")]
    return None
