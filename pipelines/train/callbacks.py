"""Callbacks of the training loop: every side effect of training lives here, not in the loop.

Each callback has no-op hooks for the loop's events and a state_dict() that checkpoints carry, so that
a resumed run continues with the same best loss, timers and counters.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from .. import checkpoints as ckpt
from .errors import NonFiniteLoss
from .loop import USER_STOP

TOTALS = ("skipped_steps",)  # running totals: the store gets the latest, not a mean over the window


def ranking(metrics: dict) -> float:
    """An evaluation's number as lower-is-better (FID as it is, PSNR negated)."""
    return -metrics["value"] if metrics.get("higher_is_better") else metrics["value"]


class Callback:
    def on_start(self, trainer) -> None: ...
    def on_step_end(self, trainer, logs: dict) -> None: ...
    def on_epoch_end(self, trainer) -> None: ...
    def on_evaluation(self, trainer, metrics: dict) -> None: ...
    def on_save(self, trainer, folder: Path, target: Path) -> None: ...  # `folder`: the hidden copy that becomes `target`
    def on_checkpoint(self, trainer, path: Path) -> None: ...
    def on_exception(self, trainer, exc: BaseException) -> None: ...
    def on_end(self, trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class StoreLogger(Callback):
    """Averages step values over `every` steps and writes them to the run store and log.txt.

    It is also the heartbeat (liveness and progress, once a second), and it passes a stop requested through
    the store (the app's Stop button, even for a run in another process) on to the trainer within a step.
    """

    def __init__(self, store, run_name: str, logger: logging.Logger, every: int):
        self.store, self.run_name, self.log, self.every = store, run_name, logger, every
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.count, self.seconds, self.last_beat = 0, 0.0, 0.0

    def on_start(self, trainer) -> None:
        if trainer.is_main:
            self.store.truncate_after(self.run_name, trainer.state.global_step)
            self.store.update_run(self.run_name, total_steps=trainer.state.total_steps)

    def on_step_end(self, trainer, logs: dict) -> None:
        for k, v in logs.items():
            if math.isfinite(v):  # a skipped step's NaN would blank the window's mean (SQLite stores NaN as NULL)
                self.sums[k] = self.sums.get(k, 0.0) + v
                self.counts[k] = self.counts.get(k, 0) + 1
        self.count += 1
        s = trainer.state
        self.seconds += s.step_seconds
        if trainer.is_main:
            if self.store.stop_requested(self.run_name):  # a read of one row: cheap enough for every step
                trainer.request_stop(USER_STOP)
            if time.monotonic() - self.last_beat >= 1.0:
                self.last_beat = time.monotonic()
                self.store.heartbeat(self.run_name, s.global_step, s.epoch)
        if self.count < self.every and s.step_in_epoch < s.steps_per_epoch:
            return
        values = {k: v / self.counts[k] for k, v in self.sums.items()}
        values.update({k: logs[k] for k in TOTALS if k in logs})
        values["images_per_s"] = self.count * s.images_per_step / max(self.seconds, 1e-9)
        epoch = s.epoch + s.step_in_epoch / s.steps_per_epoch
        if trainer.is_main:
            self.store.log_metrics(self.run_name, s.global_step, epoch, values)
            self.log.info("step %d epoch %.2f %s", s.global_step, epoch,
                          " ".join(f"{k}={v:.4g}" for k, v in values.items()))
        self.sums, self.counts, self.count, self.seconds = {}, {}, 0, 0.0


BUDGET_STOP = "time budget"
# Writing final/, the last checkpoint and sample grid after training: this share of the budget (and at least
# BUDGET_SLACK_SECONDS) is kept for them.
BUDGET_SLACK = 0.03
BUDGET_SLACK_SECONDS = 1.5


class TimeBudget(Callback):
    """Ends training like a stop, but as completed (final/ is written), early enough that what follows training
    fits in `max_minutes` too: a budget is the whole run's, evaluations included, so a 5-minute run ends in about 5.

    `after_training()` estimates the seconds of what follows training: the evaluations at the end (the evaluator
    measures them), the last saves and sample grid (timed when they were last written). The budget counts from this
    start or resume (after start-up: data, the evaluator's real features): resuming a run gives it `max_minutes` more.
    """

    def __init__(self, max_minutes: float | None, after_training=lambda budget: 0.0):
        self.budget = max_minutes * 60 if max_minutes else None
        self.after_training = after_training
        self.started = time.monotonic()

    def on_start(self, trainer) -> None:
        self.started = time.monotonic()
        if self.budget and trainer.is_main:  # the Runs tab's bar and time left follow it
            trainer.run.store.update_run(trainer.run.name, budget_ends_at=time.time() + self.budget)

    def remaining(self) -> float | None:
        """Seconds left of the budget (None: no budget)."""
        return None if not self.budget else self.budget - (time.monotonic() - self.started)

    def on_step_end(self, trainer, logs: dict) -> None:
        # One more step must end in time too: on a slow or busy machine a step alone can take seconds.
        after = self.after_training(self.budget) + max(BUDGET_SLACK * self.budget, BUDGET_SLACK_SECONDS) if self.budget else 0
        if self.budget and self.remaining() <= after + trainer.state.step_seconds:
            trainer.request_stop(BUDGET_STOP)


class Checkpointer(Callback):
    """checkpoint-<step>/ every N epochs (keeping the last K), best/, and final/ at the end.

    best/ follows the evaluations (FID, or PSNR for super-resolution) when `best_by_metric`, else the epoch loss at checkpoint epochs
    (for families whose loss ranks models: a GAN without evaluations has no best/).
    A run stopped by a person gets a resumable checkpoint; any other end (all epochs, time budget, early
    stopping) also final/. Nothing is written after an exception, and nothing whose state holds NaN or inf
    (that fails the run instead), so a NaN never overwrites a good checkpoint.
    """

    def __init__(self, run_dir: Path, every_epochs: int, keep_last: int, logger: logging.Logger, best_by_metric: bool = False):
        self.run_dir, self.every, self.keep_last, self.log = Path(run_dir), every_epochs, keep_last, logger
        self.best_by_metric = best_by_metric
        self.best, self.scale = math.inf, ""
        self.seconds = 0.0  # the last save's wall time (a time budget keeps room for the saves at the end)
        self.saved_step = -1  # kept in memory, not in state: every process takes the same decision from it

    def on_epoch_end(self, trainer) -> None:
        last_epoch = trainer.state.epoch == trainer.config.training.epochs
        if trainer.state.epoch % self.every == 0 or last_epoch:
            if not self.best_by_metric and trainer.family.loss_ranks_models:
                self._maybe_best(trainer, trainer.state.epoch_loss, "loss")
            if not last_epoch:  # the end writes the last one
                self.checkpoint(trainer)

    def on_evaluation(self, trainer, metrics: dict) -> None:
        if self.best_by_metric and not metrics.get("collapsed"):  # a collapsed generator is never best/
            if metrics["scale"] != self.scale:  # not comparable with the best so far (a resume changed it)
                self.scale, self.best = metrics["scale"], math.inf
            self._maybe_best(trainer, ranking(metrics), metrics["label"], metrics["value"])

    def _maybe_best(self, trainer, rank: float, label: str, value: float | None = None) -> None:
        if rank < self.best:  # every process has the same value (reduced or broadcast), so the same answer
            self.best = rank
            self._save(trainer, self.run_dir / "best", with_state=False)
            if trainer.is_main:
                trainer.run.store.update_run(trainer.run.name, best_metric=label, best_value=rank if value is None else value)

    def checkpoint(self, trainer) -> None:
        self._save(trainer, self.run_dir / f"checkpoint-{trainer.state.global_step}")
        self.saved_step = trainer.state.global_step
        if trainer.is_main:
            ckpt.prune_checkpoints(self.run_dir, self.keep_last)

    def _save(self, trainer, folder: Path, with_state: bool = True) -> None:
        bad, total = ckpt.nonfinite_tensors(trainer.family.state_dict())  # every process: the same weights, the same answer
        if bad:
            raise NonFiniteLoss(f"{len(bad)} of {total} tensors of the training state hold NaN or inf (e.g. {bad[0]}); "
                                f"{folder.name}/ was not written")
        start = time.perf_counter()
        trainer.accelerator.wait_for_everyone()
        rng_states = trainer.gather_rng_states() if with_state else None  # every rank takes part
        if trainer.is_main:
            trainer.save_checkpoint(folder, rng_states=rng_states)
            self.log.info("saved %s", folder.name)
        self.seconds = trainer.broadcast(time.perf_counter() - start)  # every process: the same budget stop

    def on_end(self, trainer) -> None:
        if self.saved_step != trainer.state.global_step:  # a stop at an epoch end has written it already
            self.checkpoint(trainer)
        if trainer.state.stop_reason != USER_STOP:
            self._save(trainer, self.run_dir / "final", with_state=False)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_by_metric": self.best_by_metric, "scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        # A resume that switched evaluation on or off compares a different number: start best/ afresh.
        if state.get("best_by_metric", False) == self.best_by_metric:
            self.best, self.scale = state["best"], state.get("scale", "")


class SampleGrid(Callback):
    """samples/epoch_<n>.png from fixed seeds with the EMA weights, and plots/loss.png, every N epochs and at an end
    before the last epoch (the budget, a plateau; not a person's stop)."""

    def __init__(self, run_dir: Path, every_epochs: int, num: int, logger: logging.Logger):
        self.run_dir, self.every, self.num, self.log = Path(run_dir), every_epochs, num, logger
        self.seconds = 0.0  # the last grid's wall time (a time budget keeps room for the one at the end)

    def on_epoch_end(self, trainer) -> None:
        last = trainer.state.epoch == trainer.config.training.epochs
        if trainer.state.epoch % self.every == 0 or last:
            self.write(trainer)

    def on_end(self, trainer) -> None:
        # Not after a person's stop: sampling then would hold the stop up (the last grid stays the newest).
        if trainer.state.stop_reason not in (None, USER_STOP):
            self.write(trainer)

    def write(self, trainer) -> None:
        start = time.perf_counter()
        self._write(trainer)
        self.seconds = trainer.broadcast(time.perf_counter() - start)  # every process: the same budget stop

    def _write(self, trainer) -> None:
        from ..sample.images import save_grid
        from .plots import plot_run_metrics

        if not trainer.is_main:
            return
        family = trainer.family
        images = family.sample_images(self.num, seed=0)
        path = self.run_dir / "samples" / f"epoch_{trainer.state.epoch}.png"
        save_grid(images, path, ncols=family.grid_columns(self.num), captions=family.grid_captions(self.num, seed=0),
                  headers=family.grid_headers(), title=f"epoch {trainer.state.epoch} · step {trainer.state.global_step}")
        store, name = trainer.run.store, trainer.run.name
        store.add_artifact(name, "samples", str(path), trainer.state.global_step)
        plot_run_metrics(store.metrics(name), self.run_dir / "plots" / "loss.png", trainer.family.main_loss)
        self.log.info("wrote %s", path.relative_to(self.run_dir))


class ProgressBar(Callback):
    """A terminal progress bar with loss, images/s and time left (main process only)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def on_start(self, trainer) -> None:
        if self.enabled and trainer.is_main:
            from tqdm.auto import tqdm

            s = trainer.state
            self.bar = tqdm(total=s.total_steps, initial=s.global_step, unit="step", desc=trainer.run.name, dynamic_ncols=True)
            self.tick, self.images = time.perf_counter(), 0

    def on_step_end(self, trainer, logs: dict) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        self.images += trainer.state.images_per_step
        now = time.perf_counter()
        if now - self.tick > 1.0:
            self.bar.set_postfix(loss=f"{logs.get(trainer.family.main_loss, float('nan')):.4f}",
                                 img_s=f"{self.images / (now - self.tick):.0f}", epoch=trainer.state.epoch)
            self.tick, self.images = now, 0

    def on_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_exception(self, trainer, exc: BaseException) -> None:
        self.on_end(trainer)
