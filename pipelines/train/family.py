"""What a model family gives the shared training loop, and the common single-model case.

A family builds its models from the config, performs one optimizer step from a list of micro-batches,
saves its models for use (EMA weights, in a form stock libraries load), draws sample images, and
hands its whole training state to the loop for checkpoints. The loop does everything else.
"""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from diffusers.optimization import get_scheduler

from ..data import DatasetSplits, load_splits
from .ema import EMA
from .errors import NonFiniteLoss  # noqa: F401  (raised by families; re-exported)


class Family:
    name = "base"
    main_loss = "loss"  # the logged value used for best/ and early stopping on loss
    loss_ranks_models = True  # whether a lower main loss means a better model (not for a GAN)

    def __init__(self, config, splits, accelerator, precision, log: logging.Logger | None = None,
                 workspace: Path | None = None):
        self.config, self.splits, self.accelerator, self.precision = config, splits, accelerator, precision
        self.log = log or logging.getLogger(__name__)  # the run's log.txt
        self.workspace = workspace  # where shared files (weights/, cache/) are looked for
        self.skipped_steps = self.skipped_in_a_row = 0  # steps not applied for non-finite values

    def setup(self, total_steps: int) -> None:
        raise NotImplementedError

    def optimization_step(self, micro_batches: list[dict]) -> dict[str, float]:
        raise NotImplementedError

    def count_skips(self, logs: dict, **checked: float) -> dict:
        """Count the step as skipped when any `checked` value (a loss, a gradient norm) is not finite: the
        precision step did not apply it. Fails the run after training.max_skipped_steps such steps in a row."""
        bad = ", ".join(f"{k} {v}" for k, v in checked.items() if not math.isfinite(v))
        if not bad:
            self.skipped_in_a_row = 0
        else:
            self.skipped_steps += 1
            self.skipped_in_a_row += 1
            limit = self.config.training.max_skipped_steps
            if self.skipped_in_a_row >= limit:
                raise NonFiniteLoss(f"{limit} steps in a row were skipped for non-finite values (the last: {bad}; "
                                    "training.max_skipped_steps)")
            self.log.warning("step skipped, not applied: %s (%d in a row, %d in this run)", bad, self.skipped_in_a_row,
                             self.skipped_steps)
        return {**logs, "skipped_steps": self.skipped_steps} if self.skipped_steps else logs

    def try_batch(self, batch: dict) -> None:
        """One forward and backward pass that changes no weights: probes whether a batch size fits."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def save_model(self, folder: Path) -> None:
        """Write the model for use (not for resuming) into an existing folder."""
        raise NotImplementedError

    def sample_images(self, num: int, seed: int, **options) -> np.ndarray:
        """uint8 N x H x W x C images from the weights used for exports (EMA); image i from seed `seed + i`.
        `options` are the family's sampling settings (a diffusion family takes `sampler`, `steps`, and `callback`:
        called at every sampler step, a False from it cancels with `Cancelled`)."""
        raise NotImplementedError

    def scale_learning_rate(self, factor: float) -> None:
        """Multiply every learning rate from now on (a cut on a plateau); kept in the resumable state."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the models and optimizers (after probing the batch size, before the real set-up)."""
        self.model = self.optimizer = None

    def meta(self) -> dict:
        """Facts about the model that loaders need (stored in studio.json)."""
        return {}

    def callbacks(self, run, logger) -> list:
        """Callbacks only this family needs (after the evaluator, before the checkpointer)."""
        return []

    @classmethod
    def load_data(cls, config, workspace: Path | None = None, progress=None, should_stop=None) -> DatasetSplits:
        """The run's data, prepared into (or read from) the workspace's dataset cache."""
        return load_splits(config.data, workspace, progress, should_stop)

    def prepare_batch(self, batch: dict) -> dict:
        """A batch of the training data, on the device, as the family's steps take it: images in [-1, 1]."""
        device = self.accelerator.device
        x = batch["images"].to(device, non_blocking=True).float() / 127.5 - 1.0  # pinned memory on a GPU
        if self.config.data.random_flip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return {**batch, "images": x, "labels": batch["labels"].to(device)}

    def grid_captions(self, num: int, seed: int) -> list[str] | None:
        """What each image of `sample_images(num, seed)` shows, written under it: its class, for class-conditional
        models (image i has class (seed + i) mod C, as the samplers draw it)."""
        names = self.meta().get("class_names") or []
        return [str(names[(seed + i) % len(names)]) for i in range(num)] if names else None

    def grid_headers(self) -> list[str] | None:
        """Column headers of the sample grids, when the columns mean something."""
        return None

    def evaluator(self, run, logger):
        """The callback that scores the model during training (FID/KID for generators), or None when off."""
        from .evaluation import Evaluator

        return Evaluator(self.config, run, logger) if self.config.evaluation.every_epochs else None

    def grid_columns(self, num: int) -> int | None:
        """Columns of the sample grids: for samples that cycle through the classes, a multiple of the class count
        near a square grid, so that each column holds one class."""
        classes = self.meta().get("num_classes", 0)
        return classes * max(1, round(math.sqrt(num) / classes)) if classes else None


def adamw(params, t) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one (CPU and CUDA): its step is about 6x faster on the CPU."""
    kwargs = dict(lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2), weight_decay=t.weight_decay)
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, **kwargs)


def warmup_then(schedule: str, optimizer, warmup: int, total: int):
    name = "cosine" if schedule == "cosine" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=min(warmup, max(total - 1, 0)), num_training_steps=max(total, 1))


class SingleModelFamily(Family):
    """One trainable model, AdamW with warm-up and cosine/constant decay, clipping, accumulation and EMA.

    Subclasses supply `build_model()` and `compute_loss(batch) -> (loss, logs)`.
    """

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def setup(self, total_steps: int) -> None:
        t = self.config.training
        model = self.build_model()
        optimizer = adamw((p for p in model.parameters() if p.requires_grad), t)  # frozen: a LoRA run's base
        self.lr_scheduler = warmup_then(t.lr_schedule, optimizer, t.warmup_steps, total_steps)
        self.optimizer = optimizer
        self.model = self.accelerator.prepare(model)
        self.ema = EMA(self.raw_model, t.ema_decay, t.ema_warmup_power)  # on the training device
        # Listed once: walking the module tree every step is slow.
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if self.compile:
            self.model = torch.compile(self.model)

    @property
    def compile(self) -> bool:
        mode = self.config.training.compile
        return mode == "on" or (mode == "auto" and torch.cuda.is_available())

    @property
    def raw_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    def optimization_step(self, micro_batches: list[dict]) -> dict[str, float]:
        acc, precision = self.accelerator, self.precision
        total, logs = 0.0, {}
        for i, batch in enumerate(micro_batches):
            # Gradients are only all-reduced on the last micro-batch.
            sync = acc.no_sync(self.model) if i < len(micro_batches) - 1 else nullcontext()
            with sync:
                with precision.autocast():
                    loss, logs = self.compute_loss(batch)
                precision.backward(loss / len(micro_batches), acc)
            total += loss.detach().float().item()
        loss_value = total / len(micro_batches)
        # Not applied when the loss or the gradient norm is not finite: a NaN never reaches the weights.
        grad_norm = precision.step(self.optimizer, self.params, self.config.training.grad_clip, math.isfinite(loss_value))
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.raw_model)
        logs = {**logs, "loss": loss_value, "lr": self.lr_scheduler.get_last_lr()[0], "grad_norm": grad_norm}
        return self.count_skips(logs, loss=loss_value, grad_norm=grad_norm)

    def scale_learning_rate(self, factor: float) -> None:
        # LambdaLR sets lr = base_lr * schedule(step); base_lrs are part of its state_dict.
        self.lr_scheduler.base_lrs = [lr * factor for lr in self.lr_scheduler.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] *= factor

    def try_batch(self, batch: dict) -> None:
        with self.precision.autocast():
            loss, _ = self.compute_loss(batch)
        self.precision.backward(loss, self.accelerator)
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"model": self.raw_model.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(), "grad_scaler": self.precision.state_dict(),
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        self.raw_model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.precision.load_state_dict(state["grad_scaler"])
        self.skipped_steps = state.get("skipped_steps", 0)

