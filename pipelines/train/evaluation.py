"""Evaluation during training (FID/KID every N epochs, a final one on held-out images) and early stopping.

The main process samples and scores; the others wait and receive the numbers, so that every process takes
the same best/, learning-rate and stop decisions.
"""
from __future__ import annotations

import logging
import math

import torch

from ..metrics.evaluate import Scorer, evaluate_checkpoint
from .callbacks import Callback
from .loop import USER_STOP


class Evaluator(Callback):
    """FD/KID of EMA samples (the configured fast sampler) against a split's cached real features, every N
    epochs and once more at the end; fires `evaluation` with {"fd", "kid", "kid_std", "label", "seconds"}.
    At the end (not after a person's stop) best/ is also evaluated on the held-out split."""

    def __init__(self, config, run, logger: logging.Logger):
        self.cfg, self.data_cfg, self.run, self.log = config.evaluation, config.data, run, logger
        self.batch_size = max(config.training.batch_size, 64)
        self.scorer: Scorer | None = None
        self.last_step = -1

    @property
    def cache_dir(self):
        return self.run.folder.parent / "cache"

    def on_epoch_end(self, trainer) -> None:
        if trainer.state.epoch % self.cfg.every_epochs == 0:
            self.evaluate(trainer)

    def evaluate(self, trainer) -> None:
        s, metrics = trainer.state, None
        if trainer.is_main:
            with torch.random.fork_rng(devices=[]):  # turning evaluation on must not change the training itself
                metrics = self._score(trainer)
        metrics = trainer.broadcast(metrics)
        self.last_step = s.global_step
        trainer.fire("evaluation", metrics=metrics)

    def _score(self, trainer) -> dict:
        s = trainer.state
        if self.scorer is None:
            self.scorer = Scorer(self.data_cfg, self.cfg.split, self.cfg.extractor, self.cache_dir,
                                 lambda: getattr(trainer.family.splits, self.cfg.split).images,
                                 trainer.accelerator.device, self.cfg.kid_subset_size)
        family = trainer.family
        result = self.scorer.score(lambda n, seed: family.sample_images(n, seed, sampler=self.cfg.sampler, steps=self.cfg.steps),
                                   self.cfg.num_samples, self.batch_size)
        self.run.store.log_evaluation(self.run.name, step=s.global_step, epoch=s.epoch, kind="training",
                                      checkpoint=None, **result.record())
        self.log.info("evaluation at epoch %d: %s", s.epoch, result.summary())
        return {"fd": result.fd, "kid": result.kid, "kid_std": result.kid_std, "label": result.label, "seconds": result.seconds}

    def on_end(self, trainer) -> None:
        if trainer.state.stop_reason == USER_STOP:
            return
        if self.last_step != trainer.state.global_step:
            self.evaluate(trainer)
        best = self.run.folder / "best"
        if self.cfg.final and trainer.is_main and best.is_dir():
            self.log.info("final evaluation of best/ on the %s split (%d samples)...", self.cfg.final_split,
                          self.cfg.final_num_samples)
            try:
                result = evaluate_checkpoint(best, self.cfg.final_split, self.cfg.final_num_samples, self.scorer.extractor_name,
                                             self.cfg.sampler, self.cfg.steps, self.batch_size, str(trainer.accelerator.device))
                self.log.info("final evaluation: %s", result.summary())
            except ValueError as exc:  # an empty held-out split: say so, the run itself is fine
                self.log.warning("final evaluation skipped: %s", exc)
        trainer.accelerator.wait_for_everyone()

    def state_dict(self) -> dict:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = state["last_step"]


class EarlyStopping(Callback):
    """On an FID plateau (no better FD for `patience` evaluations) the learning rate is multiplied by
    `lr_factor`, up to `max_lr_cuts` times; the plateau after that stops the run. Separately, the run stops
    once the epoch loss is below `loss_below` and has not improved for `loss_patience` epochs."""

    def __init__(self, cfg, logger: logging.Logger):
        self.cfg, self.log = cfg, logger
        self.best_fd, self.evals_without_gain, self.cuts = math.inf, 0, 0
        self.best_loss, self.epochs_without_gain = math.inf, 0

    def on_evaluation(self, trainer, metrics: dict) -> None:
        if not self.cfg.patience:
            return
        if metrics["fd"] < self.best_fd:
            self.best_fd, self.evals_without_gain = metrics["fd"], 0
            return
        self.evals_without_gain += 1
        if self.evals_without_gain < self.cfg.patience:
            return
        self.evals_without_gain = 0
        if self.cuts < self.cfg.max_lr_cuts:
            self.cuts += 1
            trainer.family.scale_learning_rate(self.cfg.lr_factor)
            self.log.info("%s has not improved for %d evaluations: learning rate x %g (cut %d of %d)", metrics["label"],
                          self.cfg.patience, self.cfg.lr_factor, self.cuts, self.cfg.max_lr_cuts)
        else:
            trainer.request_stop(f"{metrics['label']} plateau")
            self.log.info("%s has not improved for %d evaluations after %d learning-rate cuts: stopping", metrics["label"],
                          self.cfg.patience, self.cuts)

    def on_epoch_end(self, trainer) -> None:
        if self.cfg.loss_below is None:
            return
        loss = trainer.state.epoch_loss
        if loss < self.best_loss:
            self.best_loss, self.epochs_without_gain = loss, 0
        else:
            self.epochs_without_gain += 1
        if loss < self.cfg.loss_below and self.epochs_without_gain >= self.cfg.loss_patience:
            trainer.request_stop("loss plateau")
            self.log.info("epoch loss %.4g is below %g and has not improved for %d epochs: stopping", loss,
                          self.cfg.loss_below, self.epochs_without_gain)

    def state_dict(self) -> dict:
        return {"best_fd": self.best_fd, "evals_without_gain": self.evals_without_gain, "cuts": self.cuts,
                "best_loss": self.best_loss, "epochs_without_gain": self.epochs_without_gain}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
