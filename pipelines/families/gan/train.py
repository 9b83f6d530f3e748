"""The GAN family: a SAGAN-style generator and discriminator, hinge or non-saturating loss, an EMA generator.

One optimization step is one discriminator update followed by `gan.g_steps` generator updates, each over the
micro-batches (gradient accumulation). Samples, evaluations and exports use the EMA generator.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ...sample.diffusion import seed_classes, to_uint8
from ...train.ema import EMA
from ...train.family import Family, warmup_then
from .diffaug import diff_augment
from .model import ARCH_FILE, GENERATOR_FILE, noise
from .networks import Discriminator, GANArch, Generator


def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor, real_label: float) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    # Non-saturating with one-sided label smoothing: real images aim at `real_label`, fakes at 0.
    return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_label))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()




class GANFamily(Family):
    name = "gan"
    main_loss = "g_loss"

    loss_ranks_models = False  # a low generator loss often means a weak discriminator, not good images

    def __init__(self, config, splits, accelerator, precision, **context):
        super().__init__(config, splits, accelerator, precision, **context)
        m = config.model
        num_classes = splits.num_classes if m.class_conditional else 0
        self.arch = GANArch(config.data.image_size, config.data.channels, m.z_dim, m.g_channels, m.d_channels,
                            list(m.attention_resolutions), num_classes)
        self.stats_step = -1  # the EMA step whose batch-norm statistics were last recomputed

    def setup(self, total_steps: int) -> None:
        t, g = self.config.training, self.config.gan
        generator, discriminator = Generator(self.arch), Discriminator(self.arch)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                      weight_decay=t.weight_decay)
        self.d_opt = torch.optim.Adam(discriminator.parameters(), lr=g.d_learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                      weight_decay=t.weight_decay)
        warmup = g.warmup_epochs * max(total_steps // max(t.epochs, 1), 1)
        self.g_sched, self.d_sched = (warmup_then(t.lr_schedule, opt, warmup, total_steps) for opt in (self.g_opt, self.d_opt))
        self.generator, self.discriminator = self.accelerator.prepare(generator, discriminator)
        self.ema = EMA(self.accelerator.unwrap_model(self.generator), t.ema_decay, t.ema_warmup_power)
        self.g_params, self.d_params = list(self.generator.parameters()), list(self.discriminator.parameters())

    # Training ---------------------------------------------------------------------------------------

    def _labels(self, batch: dict) -> torch.Tensor | None:
        return batch["labels"] if self.arch.num_classes else None

    def _fake_labels(self, n: int, device) -> torch.Tensor | None:
        return torch.randint(0, self.arch.num_classes, (n,), device=device) if self.arch.num_classes else None

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        g = self.config.gan
        return diff_augment(x, g.augment_policy) if g.augment else x

    def _d_outputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        real = batch["images"]
        y_fake = self._fake_labels(len(real), real.device)
        with torch.no_grad():
            fake = self.generator(torch.randn(len(real), self.arch.z_dim, device=real.device), y_fake)
        return (self.discriminator(self._augment(real), self._labels(batch)),
                self.discriminator(self._augment(fake.to(real.dtype)), y_fake))

    def _g_output(self, batch: dict) -> torch.Tensor:
        n, device = len(batch["images"]), batch["images"].device
        y = self._fake_labels(n, device)
        return self.discriminator(self._augment(self.generator(torch.randn(n, self.arch.z_dim, device=device), y)), y)

    def optimization_step(self, micro_batches: list[dict]) -> dict[str, float]:
        g, acc, precision, clip = self.config.gan, self.accelerator, self.precision, self.config.training.grad_clip
        k = len(micro_batches)
        d_loss = d_real = d_fake = 0.0
        self.discriminator.requires_grad_(True)
        for batch in micro_batches:
            with precision.autocast():
                real_out, fake_out = self._d_outputs(batch)
                loss = d_loss_fn(g.loss, real_out.float(), fake_out.float(), g.real_label)
            precision.backward(loss / k, acc)
            d_loss += loss.item() / k
            d_real += torch.sigmoid(real_out.float()).mean().item() / k
            d_fake += torch.sigmoid(fake_out.float()).mean().item() / k
        # Each update is applied only when its loss and gradient norm are finite: a NaN never reaches the weights.
        d_norm = precision.step(self.d_opt, self.d_params, clip, math.isfinite(d_loss))
        self.d_opt.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # G steps need D's gradients with respect to images only
        g_loss = g_norm = 0.0  # g_norm: the sum over the G updates, not finite when any of them was not
        for _ in range(g.g_steps):
            step_loss = 0.0
            for batch in micro_batches:
                with precision.autocast():
                    loss = g_loss_fn(g.loss, self._g_output(batch).float())
                precision.backward(loss / k, acc)
                step_loss += loss.item() / k
            g_norm += precision.step(self.g_opt, self.g_params, clip, math.isfinite(step_loss))
            g_loss += step_loss / g.g_steps
            self.g_opt.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(True)
        self.g_sched.step()
        self.d_sched.step()
        self.ema.update(self.accelerator.unwrap_model(self.generator))
        logs = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake,
                "lr": self.g_sched.get_last_lr()[0], "d_lr": self.d_sched.get_last_lr()[0]}
        return self.count_skips(logs, d_loss=d_loss, d_grad_norm=d_norm, g_loss=g_loss, g_grad_norm=g_norm)

    def try_batch(self, batch: dict) -> None:
        with self.precision.autocast():
            real_out, fake_out = self._d_outputs(batch)
            loss = d_loss_fn(self.config.gan.loss, real_out.float(), fake_out.float(), 1.0)
            loss = loss + g_loss_fn(self.config.gan.loss, self._g_output(batch).float())
        self.precision.backward(loss, self.accelerator)
        self.d_opt.zero_grad(set_to_none=True)
        self.g_opt.zero_grad(set_to_none=True)

    def scale_learning_rate(self, factor: float, which: str = "both") -> None:
        pairs = {"g": [(self.g_sched, self.g_opt)], "d": [(self.d_sched, self.d_opt)]}
        for sched, opt in pairs.get(which, pairs["g"] + pairs["d"]):
            sched.base_lrs = [lr * factor for lr in sched.base_lrs]
            for group in opt.param_groups:
                group["lr"] *= factor

    # State ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        unwrap = self.accelerator.unwrap_model
        return {"generator": unwrap(self.generator).state_dict(), "discriminator": unwrap(self.discriminator).state_dict(),
                "ema": self.ema.state_dict(), "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                "g_sched": self.g_sched.state_dict(), "d_sched": self.d_sched.state_dict(),
                "grad_scaler": self.precision.state_dict(), "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        unwrap = self.accelerator.unwrap_model
        unwrap(self.generator).load_state_dict(state["generator"])
        unwrap(self.discriminator).load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        for name in ("g_opt", "d_opt", "g_sched", "d_sched"):
            getattr(self, name).load_state_dict(state[name])
        self.precision.load_state_dict(state["grad_scaler"])
        self.skipped_steps = state.get("skipped_steps", 0)

    def load_generator_weights(self, folder: Path) -> None:
        """Roll the generator (and its EMA) back to an exported model, e.g. best/ after a collapse; its Adam
        moments belong to the abandoned weights and start afresh."""
        from safetensors.torch import load_file

        weights = load_file(Path(folder) / GENERATOR_FILE)
        self.accelerator.unwrap_model(self.generator).load_state_dict(weights)
        self.ema.model.load_state_dict(weights)
        self.g_opt.state.clear()
        self.stats_step = -1

    def release(self) -> None:
        self.generator = self.discriminator = self.ema = self.g_opt = self.d_opt = None

    @torch.no_grad()
    def refresh_ema_stats(self, batches: int = 8, batch_size: int = 64) -> None:
        """Batch-norm statistics and spectral-norm vectors for the EMA weights themselves ("standing
        statistics"): the EMA copies the raw generator's, which belong to other, newer weights."""
        if self.stats_step == self.ema.step:
            return
        model, device = self.ema.model, next(self.ema.model.parameters()).device
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # a plain average over the batches below
        gen = torch.Generator().manual_seed(12345)  # never the global RNG: training must not notice
        model.train()
        for i in range(batches):
            z = torch.randn(batch_size, self.arch.z_dim, generator=gen).to(device)
            y = (torch.arange(batch_size) + i * batch_size) % self.arch.num_classes if self.arch.num_classes else None
            model(z, None if y is None else y.to(device))
        model.eval()
        for bn in norms:
            bn.momentum = 0.1
        self.stats_step = self.ema.step

    # Use --------------------------------------------------------------------------------------------

    def save_model(self, folder: Path) -> None:
        self.refresh_ema_stats()
        save_file({k: v.contiguous() for k, v in self.ema.model.state_dict().items()}, Path(folder) / GENERATOR_FILE)
        (Path(folder) / ARCH_FILE).write_text(json.dumps(self.arch.to_dict(), indent=2))

    @torch.no_grad()
    def sample_images(self, num: int, seed: int, truncation: float | None = None, **_) -> np.ndarray:
        self.refresh_ema_stats()
        device = next(self.ema.model.parameters()).device
        labels = seed_classes(self.arch.num_classes, num, seed)
        labels = None if labels is None else labels.to(device)
        z = noise(num, self.arch.z_dim, seed, truncation).to(device)
        return to_uint8(self.ema.model(z, labels))

    def callbacks(self, run, logger) -> list:
        from .collapse import CollapseWatch

        g = self.config.gan
        watch = CollapseWatch(g.collapse_ratio, g.collapse_fd_jump, g.collapse_rollback, run, logger)
        return [watch] if self.config.evaluation.every_epochs else []

    def meta(self) -> dict:
        d = self.config.data
        return {"image_size": d.image_size, "channels": d.channels, "num_classes": self.arch.num_classes,
                "class_names": self.splits.class_names if self.arch.num_classes else [], "dataset": d.dataset}
