"""The DDPM objective: discrete timesteps of a beta schedule, the UNet predicting the noise, v or the clean image,
min-SNR-gamma loss weights (Ho et al. 2020; Salimans and Ho 2022; Hang et al. 2023). Samplers: diffusers' schedulers
built from the training betas."""
from __future__ import annotations

import inspect

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)

SAMPLERS = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),
    "euler": (EulerDiscreteScheduler, {}),
}
DETERMINISTIC = "ddim"  # interpolation needs the same image from the same noise
BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2", "sigmoid": "sigmoid"}
PREDICTION_TYPES = {"epsilon": "epsilon", "v": "v_prediction", "sample": "sample"}


def make_noise_scheduler(diffusion) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=diffusion.num_train_timesteps,
                         beta_schedule=BETA_SCHEDULES[diffusion.beta_schedule],
                         prediction_type=PREDICTION_TYPES[diffusion.prediction],
                         clip_sample=diffusion.prediction == "sample")


def loss_weights(snr: torch.Tensor, prediction: str, weighting: str, gamma: float) -> torch.Tensor:
    """min-SNR-gamma weights expressed for each prediction target (Hang et al. 2023).

    For the x0 target the weight is min(snr, gamma); the epsilon loss equals the x0 loss times snr, and the
    v loss the x0 loss times (snr + 1), so those targets divide by that factor.
    """
    if weighting == "none":
        return torch.ones_like(snr)
    clipped = snr.clamp(max=gamma)
    return {"sample": clipped, "epsilon": clipped / snr, "v": clipped / (snr + 1)}[prediction]


class DDPMObjective:
    name = "ddpm"

    def __init__(self, diffusion, schedule: DDPMScheduler | None = None):
        self.diffusion = diffusion
        self.scheduler = schedule or make_noise_scheduler(diffusion)
        alphas = self.scheduler.alphas_cumprod
        self.snr = (alphas / (1 - alphas)).clamp(min=1e-8)

    def training_pair(self, x0: torch.Tensor, noise: torch.Tensor):
        """(the UNet's input, its timestep, the target of its output, the loss weight per image)."""
        d = self.diffusion
        t = torch.randint(0, d.num_train_timesteps, (x0.shape[0],), device=x0.device)
        xt = self.scheduler.add_noise(x0, noise, t)
        target = {"epsilon": noise, "sample": x0}.get(d.prediction)
        if target is None:
            target = self.scheduler.get_velocity(x0, noise, t)
        return xt, t, target, loss_weights(self.snr.to(x0.device)[t], d.prediction, d.loss_weighting, d.snr_gamma)


def make_sampler(name: str, saved):
    """A sampler with exactly the training betas (passed explicitly: not every scheduler knows 'sigmoid')."""
    cls, extra = SAMPLERS[name]
    cfg = saved.config
    if "clip_sample" in inspect.signature(cls.__init__).parameters:
        # As in training (only for sample prediction): DDIM's and DDPM's default clipping of the predicted image
        # to [-1, 1] washes out a guided v-prediction model's colours.
        extra = {**extra, "clip_sample": cfg.get("clip_sample", False)}
    return cls(num_train_timesteps=cfg.num_train_timesteps, trained_betas=saved.betas.numpy().tolist(),
               prediction_type=cfg.prediction_type, **extra)
