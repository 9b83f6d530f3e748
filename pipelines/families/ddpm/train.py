"""The diffusion family: a diffusers UNet2DModel trained to denoise, unconditional or class-conditional."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMPipeline

from ...models.unet import build_unet
from ...sample.diffusion import (
    class_conditioning,
    denoise,
    make_noise_scheduler,
    make_sampler,
    seed_classes,
    seed_noise,
    to_uint8,
)
from ...train.family import SingleModelFamily


def loss_weights(snr: torch.Tensor, prediction: str, weighting: str, gamma: float) -> torch.Tensor:
    """min-SNR-gamma weights expressed for each prediction target (Hang et al. 2023).

    For the x0 target the weight is min(snr, gamma); the epsilon loss equals the x0 loss times snr, and the
    v loss the x0 loss times (snr + 1), so those targets divide by that factor.
    """
    if weighting == "none":
        return torch.ones_like(snr)
    clipped = snr.clamp(max=gamma)
    return {"sample": clipped, "epsilon": clipped / snr, "v": clipped / (snr + 1)}[prediction]


class DDPMFamily(SingleModelFamily):
    name = "ddpm"

    def __init__(self, config, splits, accelerator, precision, **context):
        super().__init__(config, splits, accelerator, precision, **context)
        self.set_noise_schedule()
        self.num_classes = splits.num_classes if config.model.class_conditional else 0
        if config.model.class_conditional and not splits.num_classes:
            raise ValueError(f"model.class_conditional: dataset {config.data.dataset} has no labels")

    def build_model(self) -> torch.nn.Module:
        return build_unet(self.config.model, self.config.data.image_size, self.config.data.channels, self.num_classes)

    def set_noise_schedule(self) -> None:
        self.noise_scheduler = make_noise_scheduler(self.config.diffusion)
        alphas = self.noise_scheduler.alphas_cumprod
        self.snr = (alphas / (1 - alphas)).clamp(min=1e-8)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        labels = None
        if self.num_classes:
            drop = torch.rand(len(batch["labels"]), device=batch["labels"].device) < self.config.model.label_dropout
            labels = torch.where(drop, torch.full_like(batch["labels"], self.num_classes), batch["labels"])
        return self.denoising_loss(batch["images"], class_labels=labels)

    def denoising_loss(self, x0: torch.Tensor, **conditioning) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted denoising loss of clean images (or latents) x0, the UNet given `conditioning`."""
        d = self.config.diffusion
        noise = torch.randn_like(x0)
        t = torch.randint(0, d.num_train_timesteps, (x0.shape[0],), device=x0.device)
        xt = self.noise_scheduler.add_noise(x0, noise, t)
        target = {"epsilon": noise, "sample": x0}.get(d.prediction)
        if target is None:
            target = self.noise_scheduler.get_velocity(x0, noise, t)
        pred = self.model(xt, t, **conditioning).sample
        mse = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
        weights = loss_weights(self.snr.to(x0.device)[t], d.prediction, d.loss_weighting, d.snr_gamma)
        return (mse * weights).mean(), {"mse": mse.mean().item()}

    @torch.no_grad()
    def sample_images(self, num: int, seed: int, sampler: str | None = None, steps: int | None = None,
                      callback=None) -> np.ndarray:
        t = self.config.training
        unet = self.ema.model
        shape = (self.config.data.channels, self.config.data.image_size, self.config.data.image_size)
        labels = seed_classes(self.num_classes, num, seed)
        noise = seed_noise(list(range(seed, seed + num)), shape)
        sampler = make_sampler(sampler or t.sample_sampler, self.noise_scheduler)
        images = denoise(unet, sampler, noise, steps or t.sample_steps, *class_conditioning(labels, self.num_classes or None),
                         guidance=2.0 if self.num_classes else 1.0, seed=seed, callback=callback)
        return to_uint8(images)

    def save_model(self, folder: Path) -> None:
        # A standard diffusers pipeline folder: DDPMPipeline.from_pretrained loads it as it is.
        DDPMPipeline(unet=self.ema.model, scheduler=self.noise_scheduler).save_pretrained(folder)

    def meta(self) -> dict:
        d = self.config.data
        return {"image_size": d.image_size, "channels": d.channels, "num_classes": self.num_classes,
                "class_names": self.splits.class_names if self.num_classes else [], "dataset": d.dataset}
