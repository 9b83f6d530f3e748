"""The super-resolution family: SRVGGNetCompact, RRDBNet or SwinIR on random patches, L1 first, then optionally
Real-ESRGAN's stage 2 (L1 + VGG perceptual + GAN loss against a U-Net discriminator with spectral norm).

Stage 2 begins at `sr.gan_start_epoch`; the discriminator exists from the start so that a checkpoint's
state has the same shape in either stage. Samples are validation strips: LR | bicubic | SR | HR.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...train.family import SingleModelFamily, warmup_then
from .model import bicubic_up
from .networks import SRArch, UNetDiscriminatorSN, initialise, load_matching
from .vgg import PerceptualLoss, find_vgg_weights


class SRFamily(SingleModelFamily):
    name = "sr"

    def __init__(self, config, splits, accelerator, precision, **context):
        super().__init__(config, splits, accelerator, precision, **context)
        m = config.model
        self.arch = SRArch.from_size(m.size, m.scale, config.sr.patch_size, m.embed_dim, m.depths)
        self.gan = config.sr.gan_start_epoch is not None
        self.discriminator = self.perceptual = None

    @property
    def loss_ranks_models(self) -> bool:  # an adversarial loss does not say which weights are better
        return not self.gan

    @classmethod
    def load_data(cls, config, workspace=None, progress=None, should_stop=None):
        from .data import load_sr_splits

        return load_sr_splits(config, workspace, progress, should_stop)

    def build_model(self) -> torch.nn.Module:
        model = initialise(self.arch.build())
        if self.config.sr.init_weights:
            from .model import find_model_file, read_state

            file = find_model_file(Path(self.config.sr.init_weights).expanduser())
            try:
                load_matching(model, read_state(file)[0])
            except ValueError as exc:
                raise ValueError(f"sr.init_weights: {file.name} does not fit {self.config.model.size} x{self.arch.scale}: {exc}") from None
            self.log.info("started from the weights in %s", file)
        return model

    def setup(self, total_steps: int) -> None:
        super().setup(total_steps)
        t, sr = self.config.training, self.config.sr
        self.log.info("%d HR images of %d px, %d random %d px patches per epoch", self.splits.train.num_images,
                      self.config.data.image_size, len(self.splits.train), sr.patch_size)
        if self.config.evaluation.every_epochs and not getattr(self.splits, self.config.evaluation.split).num_images:
            self.log.warning("no %s images (too few images for data.%s_fraction): validation uses the %s images",
                             self.config.evaluation.split, self.config.evaluation.split, self.held_out_name())
        if not self.gan:
            return
        self.gan_from_step = sr.gan_start_epoch * max(total_steps // max(t.epochs, 1), 1)
        discriminator = UNetDiscriminatorSN(3, sr.d_channels)
        self.d_opt = torch.optim.Adam(discriminator.parameters(), lr=sr.d_learning_rate, betas=(t.adam_beta1, t.adam_beta2))
        self.d_sched = warmup_then("constant", self.d_opt, 0, total_steps)
        self.discriminator = self.accelerator.prepare(discriminator)
        self.d_params = list(self.discriminator.parameters())
        if sr.vgg_weights and not Path(sr.vgg_weights).expanduser().is_file():
            raise ValueError(f"sr.vgg_weights: {sr.vgg_weights} is not a file")
        vgg = find_vgg_weights(sr.vgg_weights, self.workspace) if sr.perceptual_weight else None
        if vgg is not None:
            self.perceptual = PerceptualLoss(vgg).to(self.accelerator.device)
            self.log.info("stage 2 from epoch %d: perceptual loss with %s", sr.gan_start_epoch, vgg)
        elif sr.perceptual_weight:
            self.log.warning("stage 2 from epoch %d without the perceptual loss: no VGG19 weights (vgg19-dcbb9e9d.pth) in "
                             "sr.vgg_weights, $STUDIO_VGG_WEIGHTS, <workspace>/weights/ or torch's hub cache", sr.gan_start_epoch)

    def prepare_batch(self, batch: dict) -> dict:
        device = self.accelerator.device
        return {"lr": batch["lr"].to(device).float() / 255.0, "hr": batch["hr"].to(device).float() / 255.0}

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = F.l1_loss(self.model(batch["lr"]).float(), batch["hr"])
        return self.config.sr.l1_weight * l1, {"l1": l1.item()}

    @property
    def in_stage_two(self) -> bool:
        """Whether the next step is a stage-2 step."""
        return self.gan and self.ema.step >= self.gan_from_step

    @property
    def trained_in_stage_two(self) -> bool:
        """Whether the current weights have had stage-2 steps."""
        return self.gan and self.ema.step > self.gan_from_step

    def optimization_step(self, micro_batches: list[dict]) -> dict[str, float]:
        if not self.in_stage_two:
            return super().optimization_step(micro_batches)
        sr, acc, precision, k = self.config.sr, self.accelerator, self.precision, len(micro_batches)
        logs = {"loss": 0.0, "l1": 0.0, "perceptual": 0.0, "g_gan": 0.0, "d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        fakes = []
        self.discriminator.requires_grad_(False)
        for batch in micro_batches:
            with precision.autocast():
                fake = self.model(batch["lr"]).float()
                l1 = F.l1_loss(fake, batch["hr"])
                percep = self.perceptual(fake, batch["hr"]) if self.perceptual is not None else torch.zeros((), device=fake.device)
                g_gan = F.binary_cross_entropy_with_logits(d_out := self.discriminator(fake).float(), torch.ones_like(d_out))
                loss = sr.l1_weight * l1 + sr.perceptual_weight * percep + sr.gan_weight * g_gan
            precision.backward(loss / k, acc)
            fakes.append(fake.detach())
            for name, value in (("loss", loss), ("l1", l1), ("perceptual", percep), ("g_gan", g_gan)):
                logs[name] += value.item() / k
        # Each update is applied only when its loss and gradient norm are finite: a NaN never reaches the weights.
        grad_norm = precision.step(self.optimizer, self.params, self.config.training.grad_clip, math.isfinite(logs["loss"]))
        self.optimizer.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(True)
        for batch, fake in zip(micro_batches, fakes):
            with precision.autocast():
                real_out, fake_out = self.discriminator(batch["hr"]).float(), self.discriminator(fake).float()
                d_loss = (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                          + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
            precision.backward(d_loss / k, acc)
            logs["d_loss"] += d_loss.item() / k
            logs["d_real"] += torch.sigmoid(real_out).mean().item() / k
            logs["d_fake"] += torch.sigmoid(fake_out).mean().item() / k
        d_norm = precision.step(self.d_opt, self.d_params, self.config.training.grad_clip, math.isfinite(logs["d_loss"]))
        self.d_opt.zero_grad(set_to_none=True)
        self.lr_scheduler.step()
        self.d_sched.step()
        self.ema.update(self.raw_model)
        logs = {**logs, "lr": self.lr_scheduler.get_last_lr()[0], "d_lr": self.d_sched.get_last_lr()[0], "grad_norm": grad_norm}
        return self.count_skips(logs, loss=logs["loss"], grad_norm=grad_norm, d_loss=logs["d_loss"], d_grad_norm=d_norm)

    def scale_learning_rate(self, factor: float) -> None:
        super().scale_learning_rate(factor)
        if self.discriminator is not None:
            self.d_sched.base_lrs = [lr * factor for lr in self.d_sched.base_lrs]
            for group in self.d_opt.param_groups:
                group["lr"] *= factor

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.discriminator is not None:
            state["discriminator"] = self.accelerator.unwrap_model(self.discriminator).state_dict()
            state["d_opt"], state["d_sched"] = self.d_opt.state_dict(), self.d_sched.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.discriminator is not None and "discriminator" in state:  # a resume may switch stage 2 on
            self.accelerator.unwrap_model(self.discriminator).load_state_dict(state["discriminator"])
            self.d_opt.load_state_dict(state["d_opt"])
            self.d_sched.load_state_dict(state["d_sched"])

    def release(self) -> None:
        super().release()
        self.discriminator = self.d_opt = self.perceptual = None

    # Use --------------------------------------------------------------------------------------------

    def save_model(self, folder: Path) -> None:
        from .model import save_upscaler_files

        save_upscaler_files(self.ema.model, self.arch, Path(folder))

    def held_out_name(self) -> str:
        """The split validation uses: the configured one, or the next one that has images."""
        order = [self.config.evaluation.split, "val", "test", "train"]
        return next(s for s in order if getattr(self.splits, s).num_images)

    def held_out(self):
        return getattr(self.splits, self.held_out_name())

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """uint8 3 x h x w -> uint8 3 x sh x sw with the EMA weights (rounded as a saved image would be)."""
        from .model import Upscaler

        upscaler = Upscaler(self.ema.model, self.arch, Path("ema"))  # pads odd sizes for RRDBNet x2
        return upscaler.run(lr[None].float() / 255.0, tile=0, dtype=torch.uint8)[0]

    def sample_images(self, num: int, seed: int, **_) -> np.ndarray:
        """Validation strips, one row per held-out image: LR (pixels enlarged) | bicubic | SR | HR, centre crops
        of at most 256 px. `seed` is unused: the held-out inputs are fixed."""
        data, rows = self.held_out(), []
        for i in range(min(num, data.num_images)):
            lr, hr = data.pair(i)
            panels = [nearest(lr, self.arch.scale), bicubic_up(lr, self.arch.scale), self.upscale(lr), hr]
            rows += [centre_crop(p.permute(1, 2, 0).numpy(), 256) for p in panels]
        return np.stack(rows)

    def grid_columns(self, num: int) -> int:
        return 4

    def grid_headers(self) -> list[str]:
        return ["LR", "bicubic", "SR", "HR"]

    def meta(self) -> dict:
        return {"scale": self.arch.scale, "arch": self.arch.arch, "size": self.config.model.size,
                "image_size": self.config.data.image_size, "dataset": self.config.data.dataset}

    def evaluator(self, run, logger):
        from .validation import SRValidator

        return SRValidator(self.config, run, logger) if self.config.evaluation.every_epochs else None


def nearest(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return lr.repeat_interleave(scale, 1).repeat_interleave(scale, 2)


def centre_crop(arr: np.ndarray, size: int) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return np.ascontiguousarray(arr[top:top + size, left:left + size])
