"""EDM (Karras et al. 2022): the network F is wrapped as the denoiser D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)
with x = x0 + sigma noise; log sigma is drawn normal (P_mean, P_std) in training, and the loss weight
(sigma^2 + sigma_data^2) / (sigma sigma_data)^2 on |D - x0|^2 equals unit weight on F's own target
(x0 - c_skip x) / c_out, which is how it is trained here. c_noise = log(sigma) / 4, as in EDM and diffusers.

Samplers: EDM's deterministic 2nd-order Heun on its rho-7 sigma steps (written here: diffusers has none),
DPM-Solver++ 2M Karras and Euler (diffusers' EDM schedulers). The saved scheduler is diffusers'
`EDMDPMSolverMultistepScheduler` with prediction_type "epsilon", whose preconditioning is exactly this one.
"""
from __future__ import annotations

import math
from itertools import pairwise

import torch
from diffusers import EDMDPMSolverMultistepScheduler, EDMEulerScheduler
from diffusers.schedulers.scheduling_utils import SchedulerOutput

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
SAMPLERS = ("heun", "dpm++", "euler")
DETERMINISTIC = "heun"


def preconditioning(sigma: torch.Tensor, sigma_data: float):
    """(c_skip, c_out, c_in, c_noise) of EDM's Table 1."""
    total = sigma ** 2 + sigma_data ** 2
    return sigma_data ** 2 / total, sigma * sigma_data / total.sqrt(), 1 / total.sqrt(), 0.25 * sigma.log()


def karras_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO) -> torch.Tensor:
    """EDM's noise levels for `steps` steps, from sigma_max down to sigma_min, then 0."""
    ramp = torch.linspace(0, 1, steps) if steps > 1 else torch.zeros(1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return torch.cat([(hi + ramp * (lo - hi)) ** rho, torch.zeros(1)])


class EDMObjective:
    name = "edm"

    def __init__(self, diffusion, sigma_data: float):
        self.diffusion, self.sigma_data = diffusion, sigma_data
        self.scheduler = EDMDPMSolverMultistepScheduler(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, sigma_data=sigma_data,
                                                        sigma_schedule="karras", rho=RHO, prediction_type="epsilon",
                                                        algorithm_type="dpmsolver++", solver_order=2)

    def training_pair(self, x0: torch.Tensor, noise: torch.Tensor):
        d = self.diffusion
        sigma = (d.p_mean + d.p_std * torch.randn(x0.shape[0], device=x0.device)).exp()
        c_skip, c_out, c_in, c_noise = preconditioning(sigma, self.sigma_data)
        per_image = lambda c: c.view(-1, *[1] * (x0.dim() - 1))
        x = x0 + per_image(sigma) * noise
        return per_image(c_in) * x, c_noise, (x0 - per_image(c_skip) * x) / per_image(c_out), torch.ones_like(sigma)


class EDMHeunScheduler:
    """EDM's Algorithm 1 (deterministic, S_churn = 0) in diffusers' scheduler shape, so the shared sampling loop
    drives it: each step from sigma_i to sigma_i+1 is an Euler step corrected by a second evaluation at sigma_i+1
    (but the last, to sigma 0). `steps` sigma steps take 2 steps - 1 network evaluations."""

    order = 2

    def __init__(self, sigma_min: float, sigma_max: float, sigma_data: float, rho: float = RHO):
        self.sigma_min, self.sigma_max, self.sigma_data, self.rho = sigma_min, sigma_max, sigma_data, rho
        self.init_noise_sigma = sigma_max

    def set_timesteps(self, steps: int, device=None) -> None:
        sigmas = karras_sigmas(steps, self.sigma_min, self.sigma_max, self.rho).tolist()
        # One entry per network evaluation: (sigma it sees, step start, step end, is it the correction).
        self.plan = []
        for hi, lo in pairwise(sigmas):
            self.plan.append((hi, hi, lo, False))
            if lo > 0:
                self.plan.append((lo, hi, lo, True))
        self.timesteps = torch.tensor([0.25 * math.log(s) for s, *_ in self.plan], device=device)
        self.index, self.start = 0, None

    def scale_model_input(self, x: torch.Tensor, t) -> torch.Tensor:
        sigma = self.plan[self.index][0]
        return x / math.sqrt(sigma ** 2 + self.sigma_data ** 2)

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor, **_) -> SchedulerOutput:
        sigma, hi, lo, correction = self.plan[self.index]
        total = sigma ** 2 + self.sigma_data ** 2
        denoised = self.sigma_data ** 2 / total * x + sigma * self.sigma_data / math.sqrt(total) * model_output
        slope = (x - denoised) / sigma
        self.index += 1
        if not correction:
            self.start = (x, slope)
            return SchedulerOutput(prev_sample=x + (lo - hi) * slope)
        x_hi, slope_hi = self.start
        return SchedulerOutput(prev_sample=x_hi + (lo - hi) * (slope_hi + slope) / 2)


def make_sampler(name: str, saved):
    c = saved.config
    if name == "heun":
        return EDMHeunScheduler(c.sigma_min, c.sigma_max, c.sigma_data, c.rho)
    if name == "euler":
        return EDMEulerScheduler(sigma_min=c.sigma_min, sigma_max=c.sigma_max, sigma_data=c.sigma_data,
                                 sigma_schedule="karras", rho=c.rho, prediction_type="epsilon")
    return EDMDPMSolverMultistepScheduler.from_config(c)


def measure_sigma_data(images: torch.Tensor) -> float:
    """Standard deviation of uint8 N x H x W x C (or N x C x H x W) images scaled to [-1, 1]."""
    return float((images.float() / 127.5 - 1).std())
