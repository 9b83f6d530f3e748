"""Evaluation during training (FID/KID every N epochs, a final one on held-out images) and early stopping.

The main process samples and scores; the others wait and receive the numbers, so that every process takes
the same best/, learning-rate and stop decisions.
"""
from __future__ import annotations

import logging
import time

import torch

from ..data.source import StopRequested
from ..metrics.budget import (
    EACH_SHARE,
    FINAL_SHARE,
    MIN_SAMPLES,
    TRAINING_SHARE,
    UNTIMED_SHARE,
    sized_samples,
)
from ..metrics.evaluate import Scorer, evaluate_checkpoint
from ..sample.request import Cancelled
from .callbacks import BUDGET_SLACK, Callback
from .early_stopping import EarlyStopping  # noqa: F401  (imported from here by earlier code)
from .loop import USER_STOP
from .stopping import StopWatch, stopped_by_person

FINAL_MIN_SAMPLES = MIN_SAMPLES  # (the name earlier code and tests use)
PROBE_SAMPLES = 16  # generated and scored at the start of a run with a time budget, to size its evaluations


class PeriodicEvaluation(Callback):
    """Scores the model every `cfg.every_epochs` epochs and once more at the end (not after a person's stop).
    The main process scores (`score(trainer) -> metrics`, with "value", "label" and "scale"); every process
    receives the numbers and fires `evaluation`, so that all take the same best/ and plateau decisions.

    With a time budget an evaluation runs only when it fits (see metrics/budget.py), else the log says why it was
    skipped; a person's stop interrupts it, and the run ends stopped."""

    budget = None  # the run's TimeBudget, when it has one (build_trainer sets it): the evaluations fit in it

    def __init__(self, cfg, run, logger: logging.Logger):
        self.cfg, self.run, self.log = cfg, run, logger
        self.last_step = -1
        self.seconds: float | None = None  # the last evaluation's wall time, on every process (the others wait for it)
        self.spent = 0.0  # seconds of this start's evaluations during training
        self.said: set[str] = set()  # reasons for skipping, logged once each
        self.closing = False  # the evaluation under way is the one at the end (off the every-N-epochs schedule)

    def budget_seconds(self) -> float | None:
        return self.budget.budget if self.budget is not None and self.budget.budget else None

    def estimate(self) -> float | None:
        """Seconds the next evaluation will take (None: not known yet; 0: none will run)."""
        return self.seconds

    def after_training(self, budget: float) -> float:
        """Seconds the evaluations at the end of a run will take (the time budget stops training that much earlier)."""
        estimate = self.estimate()
        return UNTIMED_SHARE * budget if estimate is None else estimate

    def no_room(self, closing: bool) -> str | None:
        """Why the next evaluation does not fit in the time budget (None: it fits, or nothing says it does not)."""
        budget, estimate = self.budget_seconds(), self.estimate()
        if not budget or estimate is None:
            return None
        left = self.budget.remaining()
        if estimate > left + BUDGET_SLACK * budget:
            return (f"it takes about {estimate:.0f} s and {max(left, 0):.0f} s are left of the {budget_text(budget)} "
                    "time budget")
        if not closing and self.spent + 2 * estimate > TRAINING_SHARE * budget:  # this one and the closing one
            return (f"evaluations during training have had their {TRAINING_SHARE:.0%} of the {budget_text(budget)} "
                    f"time budget (one takes about {estimate:.0f} s; the closing one is kept)")
        return None

    def skip(self, what: str, why: str) -> None:
        if why not in self.said:
            self.said.add(why)
            self.log.info("%s skipped: %s", what, why)

    def on_epoch_end(self, trainer) -> None:
        # Every process agrees on the stop reason here (the loop's should_stop gathered it).
        if trainer.state.epoch % self.cfg.every_epochs == 0 and trainer.state.stop_reason != USER_STOP:
            why = self.no_room(closing=False)
            if why:
                self.skip(f"evaluation at epoch {trainer.state.epoch}", why)
            else:
                self.evaluate(trainer)

    def on_end(self, trainer) -> None:
        if trainer.state.stop_reason != USER_STOP and self.last_step != trainer.state.global_step:
            why = self.no_room(closing=True)  # this one is for best/ to consider the end of the run
            if why:
                self.skip("closing evaluation", why)
            else:
                self.closing = True
                self.evaluate(trainer)

    def evaluate(self, trainer) -> None:
        metrics, start = None, time.perf_counter()
        if trainer.is_main:
            try:
                with torch.random.fork_rng(devices=[]):  # turning evaluation on must not change the training itself
                    metrics = self.score(trainer)
            except Cancelled:
                metrics = {"stopped": True}
        metrics = trainer.broadcast(metrics)
        self.last_step = trainer.state.global_step
        if metrics.get("stopped"):
            stopped_by_person(trainer, self.log, f"evaluation at epoch {trainer.state.epoch}")
            return
        self.seconds = time.perf_counter() - start
        self.spent += self.seconds
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
    are comparable with (extractor, sample count, split), so that a resume that changed it starts afresh.

    With a time budget, a few samples are timed at the start and every evaluation of the run gets the same sample
    count, what fits in EACH_SHARE of the budget (none below MIN_SAMPLES: then they are skipped, and the log says so)."""

    def __init__(self, config, run, logger: logging.Logger):
        super().__init__(config.evaluation, run, logger)
        self.data_cfg, self.batch_size = config.data, max(config.training.batch_size, 64)
        self.scorer: Scorer | None = None
        self.sample_seconds: float | None = None  # per generated and scored image: from the probe, then each evaluation
        self.num = self.cfg.num_samples  # per evaluation during training (0: they do not fit in the budget)

    def final_samples(self, budget: float | None, seconds_left: float | None = None) -> int:
        """The final evaluation's sample count: as configured, or what fits in its share of a time budget (or in the
        seconds left of it), once the speed is known (0: too few fit)."""
        if not self.cfg.final:
            return 0
        return sized_samples(self.cfg.final_num_samples, budget, self.sample_seconds, FINAL_SHARE, seconds_left)

    def estimate(self) -> float | None:
        return None if self.sample_seconds is None else self.num * self.sample_seconds

    def after_training(self, budget: float) -> float:
        if self.sample_seconds is None:
            return UNTIMED_SHARE * budget + (FINAL_SHARE * budget if self.cfg.final else 0.0)
        final = self.final_samples(budget) * self.sample_seconds if self.num else 0.0  # no evaluation: no best/ to score
        return self.estimate() + final

    def no_room(self, closing: bool) -> str | None:
        if not self.num:
            return (f"fewer than {min(MIN_SAMPLES, self.cfg.num_samples)} samples fit in {EACH_SHARE:.0%} of the "
                    f"{budget_text(self.budget_seconds())} time budget")
        return super().no_room(closing)

    def on_start(self, trainer) -> None:
        seconds = None
        if trainer.is_main:  # a missing extractor or an empty split fails now, not after the first epochs
            with torch.random.fork_rng(devices=[]):
                self._scorer(trainer)
                if self.budget_seconds():
                    seconds = self.probe(trainer)
        if self.budget_seconds():
            self.size(trainer.broadcast(seconds))  # every process: the same plan, the same stop for the budget

    def probe(self, trainer) -> float:
        """Seconds to generate and score one sample, from a few (more than a full batch takes per sample: the safe side)."""
        from ..metrics.distance import extract

        family, cfg, n, stop = trainer.family, self.cfg, min(PROBE_SAMPLES, self.cfg.num_samples), StopWatch(trainer)
        trainer.run.store.set_phase(trainer.run.name, "timing an evaluation sample")
        start = time.perf_counter()
        try:
            extract(self.scorer.extractor, family.sample_images(n, 0, sampler=cfg.sampler, steps=cfg.steps,
                                                                callback=lambda info: not stop()))
        except Cancelled as exc:  # before training: nothing to resume from
            raise StopRequested("stopped while timing evaluation samples") from exc
        finally:
            trainer.run.store.set_phase(trainer.run.name, None)
        return (time.perf_counter() - start) / n

    def size(self, sample_seconds: float) -> None:
        budget, asked = self.budget_seconds(), self.cfg.num_samples
        self.sample_seconds = sample_seconds
        self.num = sized_samples(asked, budget, sample_seconds, EACH_SHARE)
        if not self.num:
            self.log.info("evaluations skipped: fewer than %d samples fit in %.0f%% of the %s time budget "
                          "(%.3f s a sample here); best/ and the final evaluation need them", min(MIN_SAMPLES, asked), EACH_SHARE * 100,
                          budget_text(budget), sample_seconds)
        elif self.num < asked:
            self.log.info("evaluations sized to %d of %d samples (about %.0f s each) to fit the %s time budget",
                          self.num, asked, self.num * sample_seconds, budget_text(budget))

    def _scorer(self, trainer) -> Scorer:
        if self.scorer is None:
            images = getattr(trainer.family.splits, self.cfg.split)
            self.scorer = Scorer(self.data_cfg.dataset, images, self.cfg.split, self.cfg.extractor, self.run.folder.parent / "cache",
                                 trainer.accelerator.device, self.cfg.kid_subset_size, should_stop=StopWatch(trainer))
        return self.scorer

    def score(self, trainer) -> dict:
        s, family, cfg, store = trainer.state, trainer.family, self.cfg, self.run.store
        stop = StopWatch(trainer)

        def report(done: int, total: int) -> None:
            # Text only: counts in the store would make the Runs tab's bar follow this phase, which sits inside training.
            store.set_phase(self.run.name, f"evaluating: {done:,} / {total:,} samples")

        def sample(n: int, seed: int):
            return family.sample_images(n, seed, sampler=cfg.sampler, steps=cfg.steps, callback=lambda info: not stop())

        try:
            result = self._scorer(trainer).score(sample, self.num, self.batch_size, report=report, should_stop=stop)
        finally:
            store.set_phase(self.run.name, None)
        self.run.store.log_evaluation(self.run.name, step=s.global_step, epoch=s.epoch, kind="training",
                                      checkpoint=None, **result.record())
        self.run.store.log_metrics(self.run.name, s.global_step, s.epoch, {"diversity": result.diversity})
        self.log.info("%s at epoch %d: %s", "closing evaluation" if self.closing else "evaluation", s.epoch, result.summary())
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
    comes after the checkpointer, so final/ and the last checkpoint are on disk whatever happens here; a person's
    stop during it ends the run stopped."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def on_end(self, trainer) -> None:
        evaluator = self.evaluator
        cfg, run, log = evaluator.cfg, evaluator.run, evaluator.log
        best = run.folder / "best"
        if cfg.final and trainer.is_main and trainer.state.stop_reason != USER_STOP and best.is_dir():
            budget = evaluator.budget
            num = evaluator.final_samples(budget and budget.budget, budget and budget.remaining())
            if not num:  # (only a budget makes it fewer than asked)
                log.info("final evaluation skipped: less than %d samples fit in what is left of the %s time budget",
                         min(FINAL_MIN_SAMPLES, cfg.final_num_samples), budget_text(budget.budget))
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
                                             split_field="evaluation.final_split", report=report,
                                             should_stop=StopWatch(trainer))
            log.info("final evaluation: %s", result.summary())
        except (Cancelled, StopRequested):
            stopped_by_person(trainer, log, "final evaluation")
        except Exception as exc:  # noqa: BLE001  the run itself is complete and saved: say why and go on
            log.warning("final evaluation skipped: %s: %s", type(exc).__name__, exc)
        finally:
            run.store.set_phase(run.name, None)


def budget_text(seconds: float) -> str:
    """A time budget as people write it: "5 min", "90 s", "1.5 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.3g} min" if seconds < 2 * 3600 else f"{seconds / 3600:.3g} h"
