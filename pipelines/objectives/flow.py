"""Rectified flow (Liu et al. 2022; Lipman et al. 2023; the objective of Stable Diffusion 3): straight paths
x_t = (1 - t) x0 + t noise, the UNet predicting the velocity noise - x0 from x_t and 1000 t, with t drawn uniform or
logit-normal and optionally shifted towards noise (t' = s t / (1 + (s - 1) t)) as the sampler's are.

Samplers: diffusers' flow-matching Euler and Heun, and DPM-Solver++ 2M in its flow mode. The saved scheduler is
`FlowMatchEulerDiscreteScheduler`, which stock `DDPMPipeline` samples with as it is.
"""
from __future__ import annotations

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
)

TIMESTEP_SCALE = 1000  # the UNet sees 1000 t, as diffusers' flow schedulers pass it (num_train_timesteps)
SAMPLERS = ("euler", "heun", "dpm++")
DETERMINISTIC = "euler"


class FlowObjective:
    name = "flow"

    def __init__(self, diffusion):
        self.diffusion = diffusion
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=TIMESTEP_SCALE, shift=diffusion.shift)

    def draw_t(self, n: int, device) -> torch.Tensor:
        d = self.diffusion
        if d.timestep_sampling == "logit_normal":
            t = torch.sigmoid(d.logit_mean + d.logit_std * torch.randn(n, device=device))
        else:
            t = torch.rand(n, device=device)
        return d.shift * t / (1 + (d.shift - 1) * t)

    def training_pair(self, x0: torch.Tensor, noise: torch.Tensor):
        t = self.draw_t(x0.shape[0], x0.device)
        tb = t.view(-1, *[1] * (x0.dim() - 1))
        return (1 - tb) * x0 + tb * noise, t * TIMESTEP_SCALE, noise - x0, torch.ones_like(t)


def make_sampler(name: str, saved):
    shift, steps = saved.config.shift, saved.config.num_train_timesteps
    if name == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=steps, shift=shift)
    if name == "heun":
        return FlowMatchHeunDiscreteScheduler(num_train_timesteps=steps, shift=shift)
    return DPMSolverMultistepScheduler(num_train_timesteps=steps, use_flow_sigmas=True, flow_shift=shift,
                                       prediction_type="flow_prediction", algorithm_type="dpmsolver++", solver_order=2)
