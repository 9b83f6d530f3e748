"""Evaluation during training (FID/KID every N epochs, a final one on held-out images) and early stopping.

The main process samples and scores; the others wait and receive the numbers, so that every process takes
the same best/, learning-rate and stop decisions.
"""
from __future__ import annotations

import logging
import math
import time

import torch

from ..metrics.evaluate import Scorer, evaluate_checkpoint
from .callbacks import Callback, ranking
from .loop import USER_STOP

# Before the first evaluation has been timed, a time budget keeps this share of itself for the evaluations at the end.
UNTIMED_SHARE = 0.2
# The final evaluation gets at most this share of a time budget (fewer samples than configured when it must).
FINAL_SHARE = 0.1
FINAL_MIN_SAMPLES = 100  # fewer make FD meaningless: below this the final evaluation is skipped


class PeriodicEvaluation(Callback):
    """Scores the model every `cfg.every_epochs` epochs and once more at the end (not after a person's stop).
    The main process scores (`score(trainer) -> metrics`, with "value", "label" and "scale"); every process
    receives the numbers and fires `evaluation`, so that all take the same best/ and plateau decisions."""

    budget = None  # the run's TimeBudget, when it has one (build_trainer sets it): the final evaluation fits in it

    def __init__(self, cfg, run, logger: logging.Logger):
        self.cfg, self.run, self.log = cfg, run, logger
        self.last_step = -1
        self.seconds: float | None = None  # the last evaluation's wall time, on every process (the others wait for it)

    def after_training(self, budget: float) -> float:
        """Seconds the evaluations at the end of a run will take (the time budget stops training that much earlier)."""
        return self.seconds if self.seconds is not None else UNTIMED_SHARE * budget

    def on_epoch_end(self, trainer) -> None:
        # Every process agrees on the stop reason here (the loop's should_stop gathered it).
        if trainer.state.epoch % self.cfg.every_epochs == 0 and trainer.state.stop_reason != USER_STOP:
            self.evaluate(trainer)

    def on_end(self, trainer) -> None:
        if trainer.state.stop_reason != USER_STOP and self.last_step != trainer.state.global_step:
            self.evaluate(trainer)  # so that best/ considers the end of the run

    def evaluate(self, trainer) -> None:
        metrics, start = None, time.perf_counter()
        if trainer.is_main:
            with torch.random.fork_rng(devices=[]):  # turning evaluation on must not change the training itself
                metrics = self.score(trainer)
        metrics = trainer.broadcast(metrics)
        self.seconds = time.perf_counter() - start
        self.last_step = trainer.state.global_step
        trainer.fire("evaluation", metrics=metrics)

    def score(self, trainer) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = state["last_step"]

    def final_callback(self) -> Callback:
        """What runs after final/ is written (nothing, unless the evaluation has a final form)."""
        return Callback()


class Evaluator(PeriodicEvaluation):
    """FD/KID of EMA samples (the configured fast sampler) against a split's cached real features, every N
    epochs and once more at the end (not after a person's stop). Fires `evaluation` with {"value" (= "fd"), "fd", "kid",
    "kid_std", "label", "scale", "seconds", "diversity", "real_diversity"}; "scale" names what the numbers
    are comparable with (extractor, sample count, split), so that a resume that changed it starts afresh."""

    def __init__(self, config, run, logger: logging.Logger):
        super().__init__(config.evaluation, run, logger)
        self.data_cfg, self.batch_size = config.data, max(config.training.batch_size, 64)
        self.scorer: Scorer | None = None
        self.sample_seconds: float | None = None  # per generated and scored image, from the last evaluation

    def final_samples(self, budget: float | None, seconds_left: float | None = None) -> int:
        """The final evaluation's sample count: as configured, or what fits in its share of a time budget (or in the
        seconds left of it), once an evaluation has been timed."""
        asked = self.cfg.final_num_samples
        if not self.cfg.final or not budget or self.sample_seconds is None:
            return asked
        fits = FINAL_SHARE * budget if seconds_left is None else min(FINAL_SHARE * budget, seconds_left)
        return min(asked, int(fits / self.sample_seconds))

    def after_training(self, budget: float) -> float:
        end = super().after_training(budget)
        if not self.cfg.final or self.sample_seconds is None:
            return end + (FINAL_SHARE * budget if self.cfg.final else 0.0)
        return end + self.final_samples(budget) * self.sample_seconds

    def on_start(self, trainer) -> None:
        if trainer.is_main:  # a missing extractor or an empty split fails now, not after the first epochs
            with torch.random.fork_rng(devices=[]):
                self._scorer(trainer)

    def _scorer(self, trainer) -> Scorer:
        if self.scorer is None:
            images = getattr(trainer.family.splits, self.cfg.split)
            self.scorer = Scorer(self.data_cfg.dataset, images, self.cfg.split, self.cfg.extractor, self.run.folder.parent / "cache",
                                 trainer.accelerator.device, self.cfg.kid_subset_size)
        return self.scorer

    def score(self, trainer) -> dict:
        s, family, cfg, store = trainer.state, trainer.family, self.cfg, self.run.store

        def report(done: int, total: int) -> None:
            # Text only: counts in the store would make the Runs tab's bar follow this phase, which sits inside training.
            store.set_phase(self.run.name, f"evaluating: {done:,} / {total:,} samples")

        try:
            result = self._scorer(trainer).score(lambda n, seed: family.sample_images(n, seed, sampler=cfg.sampler, steps=cfg.steps),
                                                 cfg.num_samples, self.batch_size, report=report)
        finally:
            store.set_phase(self.run.name, None)
        self.run.store.log_evaluation(self.run.name, step=s.global_step, epoch=s.epoch, kind="training",
                                      checkpoint=None, **result.record())
        self.run.store.log_metrics(self.run.name, s.global_step, s.epoch, {"diversity": result.diversity})
        self.log.info("evaluation at epoch %d: %s", s.epoch, result.summary())
        return {"value": result.fd, "fd": result.fd, "kid": result.kid, "kid_std": result.kid_std, "label": result.label,
                "scale": f"{result.label}, {result.num_samples} samples vs {result.split}", "seconds": result.seconds,
                "num_samples": result.num_samples, "diversity": result.diversity, "real_diversity": result.real_diversity}

    def on_evaluation(self, trainer, metrics: dict) -> None:
        # Every process (the numbers are broadcast), so that all stop for the time budget at the same point.
        self.sample_seconds = metrics["seconds"] / metrics["num_samples"]

    def final_callback(self) -> Callback:
        return FinalEvaluation(self)


class FinalEvaluation(Callback):
    """At the end of a run (not after a person's stop), best/ on the held-out split with more samples. It
    comes after the checkpointer, so final/ and the last checkpoint are on disk whatever happens here."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def on_end(self, trainer) -> None:
        evaluator = self.evaluator
        cfg, run, log = evaluator.cfg, evaluator.run, evaluator.log
        best = run.folder / "best"
        if cfg.final and trainer.is_main and trainer.state.stop_reason != USER_STOP and best.is_dir():
            budget = evaluator.budget
            num = evaluator.final_samples(budget and budget.budget, budget and budget.remaining())
            if num < min(FINAL_MIN_SAMPLES, cfg.final_num_samples):  # (only a budget makes it fewer than asked)
                log.info("final evaluation skipped: less than %d samples fit in what is left of the %s time budget",
                         FINAL_MIN_SAMPLES, budget_text(budget.budget))
            else:
                if num < cfg.final_num_samples:
                    log.info("final evaluation sized to %d of %d samples to fit the %s time budget", num,
                             cfg.final_num_samples, budget_text(budget.budget))
                self.evaluate(trainer, best, num)
        trainer.accelerator.wait_for_everyone()

    def evaluate(self, trainer, best, num: int) -> None:
        evaluator = self.evaluator
        cfg, run, log = evaluator.cfg, evaluator.run, evaluator.log
        log.info("final evaluation of best/ on the %s split (%d samples)...", cfg.final_split, num)
        sized = "" if num == cfg.final_num_samples else f" (of {cfg.final_num_samples:,} asked: the time budget)"

        def report(done: int, total: int) -> None:
            run.store.set_phase(run.name, f"final evaluation: {done:,} / {total:,} samples{sized}", done, total)

        try:
            report(0, num)
            with torch.random.fork_rng(devices=[]):
                result = evaluate_checkpoint(best, cfg.final_split, num, evaluator.scorer.extractor_name, cfg.sampler, cfg.steps,
                                             evaluator.batch_size, str(trainer.accelerator.device),
                                             split_field="evaluation.final_split", report=report)
            log.info("final evaluation: %s", result.summary())
        except Exception as exc:  # noqa: BLE001  the run itself is complete and saved: say why and go on
            log.warning("final evaluation skipped: %s: %s", type(exc).__name__, exc)
        finally:
            run.store.set_phase(run.name, None)


def budget_text(seconds: float) -> str:
    """A time budget as people write it: "5 min", "90 s", "1.5 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.3g} min" if seconds < 2 * 3600 else f"{seconds / 3600:.3g} h"


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
