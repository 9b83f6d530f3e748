"""Start or resume a run: name and folder, store row, log file, accelerator, data, family, loop.

`train()` is what the command line, the app's run manager and `accelerate launch` all call.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed

from .. import checkpoints as ckpt
from .. import families
from ..config import RunConfig, config_to_yaml, load_config, validate_config
from ..data import StopRequested, dataset_slug
from ..data.progress import PREPARING, PreparationBar, describe
from ..ecosystem import notify, trackers
from ..ecosystem.cards import ModelCards
from ..store import RunStore, seconds_before_resume
from .callbacks import Checkpointer, ProgressBar, SampleGrid, StoreLogger, TimeBudget
from .early_stopping import EarlyStopping
from .errors import NonFiniteLoss
from .loop import USER_STOP, Trainer
from .precision import Precision, resolve_mixed_precision


@dataclass
class RunHandle:
    name: str
    folder: Path
    store: RunStore
    log: logging.Logger


def run_logger(name: str, folder: Path, main: bool) -> logging.Logger:
    log = logging.getLogger(f"pipelines.run.{name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    if main:
        handler = logging.FileHandler(folder / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
    return log


def prepare_run(config: RunConfig, workspace: str | Path, name: str | None = None) -> tuple[str, Path]:
    """Pick a free run name and create its folder, config.yaml and queued store row."""
    store = RunStore(workspace)
    if name is not None:
        config = validate_config({**config.model_dump(mode="json"), "name": name})  # same rules as the config's name
    # The family first: a DDPM and a GAN run on digits are ddpm-digits-16 and gan-digits-16 (older runs keep their names).
    base = name or config.name or f"{config.family}-{dataset_slug(config.data.dataset)}-{config.data.image_size}"
    run_name = store.unique_name(base) if not name else base
    if name and (store.exists(name) or (Path(workspace) / name).exists()):
        raise ValueError(f"--name: a run called {name!r} already exists in {workspace}; pick another name or --resume it")
    folder = Path(workspace).resolve() / run_name  # absolute: an app started elsewhere finds it
    folder.mkdir(parents=True)
    config = config.model_copy(update={"name": run_name})
    (folder / "config.yaml").write_text(config_to_yaml(config))
    store.create_run(run_name, config.family, config.data.dataset, config.data.image_size, config_to_yaml(config), str(folder))
    return run_name, folder


def train(config: RunConfig | None = None, workspace: str | Path = "checkpoints", name: str | None = None,
          resume: str | Path | None = None, overrides: list[str] | None = None, stop_event: threading.Event | None = None,
          progress: bool = True, extra_callbacks=(), run_name: str | None = None) -> dict:
    """Train a new run from `config`, or resume one (`resume`: a run folder or a checkpoint folder;
    `overrides` change its config, e.g. more epochs). `run_name` starts a run already made by `prepare_run`
    (the app queues runs that way). Returns the run's store row; raises on failure after recording it.
    """
    process = PartialState(cpu=not torch.cuda.is_available())
    main = process.is_main_process
    checkpoint = None
    if resume is not None:
        checkpoint = ckpt.resolve_resume(resume)
        workspace, run_name = checkpoint.parent.parent, checkpoint.parent.name
    elif run_name is None:
        if config is None:
            raise ValueError("train() needs a config, a prepared run_name or resume")
        run_name = broadcast_name(process, prepare_run(config, workspace, name)[0] if main else None)
    store = RunStore(workspace)
    folder = Path(store.get_run(run_name)["folder"])
    config = load_config(folder / "config.yaml", overrides)
    process.wait_for_everyone()  # every rank has read config.yaml before rank 0 rewrites it
    log = run_logger(run_name, folder, main)
    if main:
        (folder / "config.yaml").write_text(config_to_yaml(config))
        ckpt.clean_partial(folder)
        if checkpoint is not None:
            for moved in ckpt.set_aside_newer(checkpoint):
                log.info("resuming from %s: the newer %s is set aside as %s", checkpoint.name,
                         moved.name.removeprefix("abandoned-"), moved.name)
        # A resume keeps the time the run trained before (the Runs tab shows the whole run's duration)
        earlier = seconds_before_resume(store.get_run(run_name)) if checkpoint is not None else 0.0
        store.update_run(run_name, status="running", config=config_to_yaml(config), started_at=time.time(),
                         heartbeat_at=time.time(), ended_at=None, error=None, stop_requested=0, pid=os.getpid(),
                         end_reason=None, budget_ends_at=None, earlier_seconds=earlier)
    try:
        trackers.check_trackers(config)  # a missing tracker package fails the run before any training
        accelerator = Accelerator(cpu=not torch.cuda.is_available(),  # precision is per run: see precision.py
                                  **trackers.accelerator_options(config, folder))
        run = trackers.tracked(RunHandle(run_name, folder, store, log), accelerator)
        trainer = build_trainer(config, run, accelerator, stop_event, progress, extra_callbacks)
        if checkpoint is not None:
            trainer.load_training_state(ckpt.load_training_state(checkpoint))
            log.info("resumed from %s (step %d, epoch %d)", checkpoint.name, trainer.state.global_step, trainer.state.epoch)
        state = trainer.fit()
    except BaseException as exc:
        if main:
            if isinstance(exc, StopRequested):  # asked to stop before training began: nothing to resume from
                status, reason = "stopped", str(exc)
                log.info("run stopped: %s", reason)
            else:
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                reason = f"{exc}; training stopped; {ckpt.last_good_checkpoint(folder)}" if isinstance(exc, NonFiniteLoss) \
                    else f"{type(exc).__name__}: {exc}"
                log.error("run failed: %s\n%s", reason, traceback.format_exc())
            store.update_run(run_name, status=status, error=reason, ended_at=time.time(), phase=None, phase_done=None,
                             phase_total=None)
            notify.run_ended(store, run_name, config, log)
        raise
    if main:
        status = "stopped" if state.stop_reason == USER_STOP else "completed"
        # end_reason: what the Runs tab says ended it ("time budget", "FD plateau", "stop requested", "epochs")
        store.update_run(run_name, status=status, ended_at=time.time(), step=state.global_step, epoch=state.epoch,
                         end_reason=state.stop_reason or "epochs")
        log.info("run %s (%s)", status, state.stop_reason or "all epochs done")
        notify.run_ended(store, run_name, config, log, reason=state.stop_reason or "all epochs done")
    accelerator.wait_for_everyone()
    return store.get_run(run_name)


def fit_batch_size(trainer: Trainer, family) -> None:
    """Probe the largest micro-batch that fits on the GPU with a throw-away copy of the model."""
    import gc

    family.setup(trainer.state.total_steps)
    data = family.splits.train

    def fits(batch_size: int) -> None:
        batch = trainer.prepare_batch(data.batch(torch.arange(min(batch_size, len(data)))))
        family.try_batch(batch)

    try:
        trainer.fit_batch_size(fits)
    finally:
        family.release()
        gc.collect()
        torch.cuda.empty_cache()


class PreparationStatus:
    """Preparation progress as the run's phase in the store (the Runs tab shows it before step 0), its log and,
    on the command line, a bar."""

    def __init__(self, run: RunHandle, bar: bool):
        self.run, self.bar, self.last = run, PreparationBar(disable=not bar), 0.0

    def __call__(self, done: int, total: int, rate: float, task: str = PREPARING) -> None:
        self.bar(done, total, rate, task)
        if task != PREPARING and done == 0:  # a slow task (generating images) says what it does when it starts
            self.run.log.info("%s: %d images", task, total)
        if time.time() - self.last > 1.0 or done == total:
            self.last = time.time()
            text = describe(done, total, rate, task)
            if done == total:
                self.run.store.set_phase(self.run.name, None)
            else:
                self.run.store.set_phase(self.run.name, text, done, total)
            if done == total:
                if task == PREPARING:
                    self.run.log.info("prepared %d images (%.0f images/s)", total, rate)
                else:
                    self.run.log.info("%s: %d images done (%.2f images/s)", task, total, rate)


def stop_requested(run: RunHandle, stop_event: threading.Event | None) -> bool:
    return (stop_event is not None and stop_event.is_set()) or run.store.stop_requested(run.name)


def broadcast_name(process: PartialState, name: str | None) -> str:
    """Every process must use the run name the main process picked."""
    if process.num_processes == 1:
        return name
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([name])[0]


def build_trainer(config: RunConfig, run: RunHandle, accelerator: Accelerator, stop_event, progress: bool,
                  extra_callbacks=()) -> Trainer:
    t, log = config.training, run.log
    set_seed(t.seed)
    family_cls = families.get(config.family).trainer_class()
    main = accelerator.is_main_process
    if main:
        run.store.set_phase(run.name, "reading data")
    with accelerator.main_process_first():  # the main process prepares the dataset; the others then read its cache
        splits = family_cls.load_data(config, run.folder.parent, PreparationStatus(run, progress) if main else None,
                                      lambda: stop_requested(run, stop_event))
    if main:
        run.store.set_phase(run.name, None)
    images = [getattr(part, "num_images", len(part)) for part in (splits.train, splits.val, splits.test)]  # SR: not patches
    log.info("data %s: %d train, %d validation, %d test images; %d classes", config.data.dataset, *images, splits.num_classes)
    for path, reason in splits.skipped:
        log.warning("skipped %s: %s", path, reason)
    if splits.skipped:
        log.warning("skipped %d unusable files in total", len(splits.skipped))
    precision = Precision(resolve_mixed_precision(t.mixed_precision), accelerator.device)
    family = family_cls(config, splits, accelerator, precision, log=log, workspace=run.folder.parent)
    evaluator = family.evaluator(run, log)
    checkpointer = Checkpointer(run.folder, t.checkpoint_every_epochs, t.keep_last, log, best_by_metric=evaluator is not None)
    grid = SampleGrid(run.folder, t.sample_every_epochs, t.num_sample_images, log)

    def after_training(seconds: float) -> float:
        # The evaluations at the end, then the last checkpoint, final/ and the sample grid, as long as they last here.
        return (evaluator.after_training(seconds) if evaluator else 0.0) + 2 * checkpointer.seconds + grid.seconds

    # The budget stops training early enough for what follows it, and the final evaluation is sized to fit it.
    budget = TimeBudget(t.max_minutes, after_training)
    if evaluator:
        evaluator.budget = budget
    # Order matters: the collapse watch judges an evaluation before early stopping and best/ use it, and
    # before the checkpoint of the same epoch is written; the final evaluation comes after final/ is.
    # The evaluator's start (real features, the timing of a few samples) comes before the budget's: it is start-up.
    callbacks = [
        StoreLogger(run.store, run.name, log, t.log_every_steps),
        *([evaluator] if evaluator else []),
        budget,
        *family.callbacks(run, log),  # e.g. the GAN's collapse watch, which may mark an evaluation collapsed
        EarlyStopping(config.early_stopping, log),
        checkpointer,
        *([evaluator.final_callback()] if evaluator else []),
        grid,
        ModelCards(run, config, log),  # after the grid and the final evaluation, which its cards show
        *trackers.callbacks(run, config),
        ProgressBar(progress),
        *extra_callbacks,
    ]
    trainer = Trainer(family, config, run, callbacks, stop_event)
    if t.auto_batch_size and accelerator.device.type == "cuda":
        fit_batch_size(trainer, family)
        log.info("auto batch size: %d per step x %d accumulation", trainer.micro_batch, trainer.accumulation)
    family.setup(trainer.state.total_steps)
    # Different noise on every process; the same data order (from the seed) for all.
    torch.manual_seed(t.seed * 1000 + accelerator.process_index)
    log.info("%s: %d steps per epoch, %d epochs, %d images per step, mixed precision %s, device %s",
             family.name, trainer.state.steps_per_epoch, t.epochs, trainer.state.images_per_step,
             precision.mode, accelerator.device)
    return trainer
