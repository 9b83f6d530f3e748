"""Early stopping: learning-rate cuts and a stop on a plateau of the evaluations or of the epoch loss."""
from __future__ import annotations

import logging
import math

from .callbacks import Callback, ranking


class EarlyStopping(Callback):
    """On a plateau of the evaluations (no better FID or PSNR for `patience` evaluations) the learning rate is multiplied by
    `lr_factor`, up to `max_lr_cuts` times; the plateau after that stops the run. Separately, the learning rate
    is cut after every `loss_plateau` epochs without a better epoch loss, and the run stops once the epoch loss
    is below `loss_below` and has not improved for `loss_patience` epochs."""

    def __init__(self, cfg, logger: logging.Logger):
        self.cfg, self.log = cfg, logger
        self.best_value, self.evals_without_gain, self.cuts, self.scale = math.inf, 0, 0, ""
        self.best_loss, self.epochs_without_gain = math.inf, 0

    def on_evaluation(self, trainer, metrics: dict) -> None:
        if not self.cfg.patience or metrics.get("collapsed"):  # a collapsed generator's FID is no yardstick
            return
        if metrics["scale"] != self.scale:  # other numbers (a resume changed the extractor, split or count)
            self.scale, self.best_value, self.evals_without_gain = metrics["scale"], math.inf, 0
        if ranking(metrics) < self.best_value:
            self.best_value, self.evals_without_gain = ranking(metrics), 0
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
        if self.cfg.loss_below is None and not self.cfg.loss_plateau:
            return
        loss = trainer.state.epoch_loss
        if loss < self.best_loss:
            self.best_loss, self.epochs_without_gain = loss, 0
        else:
            self.epochs_without_gain += 1
        plateau = self.cfg.loss_plateau if trainer.family.loss_ranks_models else 0  # a GAN's loss says nothing of quality
        if plateau and self.epochs_without_gain and self.epochs_without_gain % plateau == 0:
            trainer.family.scale_learning_rate(self.cfg.lr_factor)
            self.log.info("epoch loss has not improved for %d epochs: learning rate x %g", self.epochs_without_gain,
                          self.cfg.lr_factor)
        if self.cfg.loss_below is not None and loss < self.cfg.loss_below and self.epochs_without_gain >= self.cfg.loss_patience:
            trainer.request_stop("loss plateau")
            self.log.info("epoch loss %.4g is below %g and has not improved for %d epochs: stopping", loss,
                          self.cfg.loss_below, self.epochs_without_gain)

    KEYS = ("best_value", "evals_without_gain", "cuts", "scale", "best_loss", "epochs_without_gain")

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.KEYS}

    def load_state_dict(self, state: dict) -> None:
        state = {"best_value": state.get("best_fd", math.inf), **state}  # checkpoints before PSNR called it best_fd
        for key in self.KEYS:
            setattr(self, key, state.get(key, getattr(self, key)))
