"""The diffusion family: a diffusers UNet2DModel trained to denoise, unconditional or class-conditional."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMPipeline

from ...data.propose import spread
from ...models.unet import build_unet
from ...objectives import make_objective
from ...sample.diffusion import (
    class_conditioning,
    denoise,
    make_sampler,
    seed_classes,
    seed_noise,
    to_uint8,
)
from ...train.family import SingleModelFamily
from .pretrained import kept_schedule, merged_unet, pretrained_unet


class DDPMFamily(SingleModelFamily):
    name = "ddpm"

    def __init__(self, config, splits, accelerator, precision, **context):
        super().__init__(config, splits, accelerator, precision, **context)
        self.set_objective()
        self.num_classes = splits.num_classes if config.model.class_conditional else 0
        if config.model.class_conditional and not splits.num_classes:
            raise ValueError(f"model.class_conditional: dataset {config.data.dataset} has no labels")

    def build_model(self) -> torch.nn.Module:
        if self.config.model.pretrained:
            return pretrained_unet(self.config, self.num_classes, self.log)
        return build_unet(self.config.model, self.config.data.image_size, self.config.data.channels, self.num_classes)

    def set_objective(self) -> None:
        """The training objective (diffusion.objective) and the scheduler saved with the model."""
        d = self.config.diffusion
        sigma_data = None
        if d.objective == "edm" and d.sigma_data is None:
            sigma_data = self.data_std()
            self.log.info("edm: sigma_data %.4f, measured on the training data", sigma_data)
        self.objective = make_objective(d, sigma_data, self.pretrained_schedule())
        self.noise_scheduler = self.objective.scheduler

    def data_std(self) -> float:
        """Standard deviation of the training images in [-1, 1] (up to 4,096 of them, evenly spread)."""
        train = self.splits.train
        return float((train.read(spread(len(train), 4096)).float() / 127.5 - 1).std())

    def pretrained_schedule(self):
        """The noise schedule model.pretrained was trained with, kept (None: the form's)."""
        return kept_schedule(self.config, self.log)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        labels = None
        if self.num_classes:
            drop = torch.rand(len(batch["labels"]), device=batch["labels"].device) < self.config.model.label_dropout
            labels = torch.where(drop, torch.full_like(batch["labels"], self.num_classes), batch["labels"])
        return self.denoising_loss(batch["images"], class_labels=labels)

    def denoising_loss(self, x0: torch.Tensor, **conditioning) -> tuple[torch.Tensor, dict[str, float]]:
        """The objective's weighted loss on clean images (or latents) x0, the UNet given `conditioning`."""
        weighted, mse = self.image_losses(x0, **conditioning)
        return weighted.mean(), {"mse": mse.mean().item()}

    def image_losses(self, x0: torch.Tensor, **conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        """(the objective's weighted loss, the plain squared error) of each image of x0."""
        x_in, timestep, target, weights = self.objective.training_pair(x0, torch.randn_like(x0))
        pred = self.model(x_in, timestep, **conditioning).sample
        mse = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
        return mse * weights, mse

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
        DDPMPipeline(unet=merged_unet(self.ema.model), scheduler=self.noise_scheduler).save_pretrained(folder)

    def meta(self) -> dict:
        d = self.config.data
        return {"image_size": d.image_size, "channels": d.channels, "num_classes": self.num_classes,
                "objective": self.config.diffusion.objective,
                "class_names": self.splits.class_names if self.num_classes else [], "dataset": d.dataset}
