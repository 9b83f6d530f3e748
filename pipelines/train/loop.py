"""The one training loop every family shares.

The loop iterates the data, asks the family for optimizer steps, and fires named events; callbacks do the
logging, sampling, checkpointing, time budgets and stop requests. Events: start, step_end, epoch_end,
evaluation, save (a model folder being written, main process), checkpoint, exception, end.
"""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints as ckpt
from ..data.prefetch import prefetch

EVENTS = ("start", "step_end", "epoch_end", "evaluation", "save", "checkpoint", "exception", "end")  # Callback.on_<event>
USER_STOP = "stop requested"  # the stop reason of a person's stop (other reasons end a run as completed)


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    images_per_step: int = 0
    step_seconds: float = 0.0  # the last step's data loading and optimization, without callbacks
    stop_reason: str | None = None  # None: ran all epochs
    logs: dict = field(default_factory=dict)  # the latest step's values
    loss_sum: float = 0.0  # the main loss summed over this epoch's steps so far
    loss_count: int = 0
    epoch_loss: float = math.inf  # mean main loss of the last completed epoch, over all processes


class Trainer:
    def __init__(self, family, config, run, callbacks=(), stop_event: threading.Event | None = None):
        self.family, self.config, self.run = family, config, run
        self.accelerator = family.accelerator
        self.callbacks = list(callbacks)
        self.stop_event = stop_event or threading.Event()
        self.state = TrainState()
        self.set_batch_size(config.training.batch_size, config.training.gradient_accumulation_steps)

    def set_batch_size(self, micro_batch: int, accumulation: int) -> None:
        world = self.accelerator.num_processes
        n = max(len(self.family.splits.train) // world, 1)
        # Every epoch must hold at least one optimizer step, however small the data.
        accumulation = min(accumulation, n)
        self.micro_batch, self.accumulation = max(1, min(micro_batch, n // accumulation)), accumulation
        self.state.steps_per_epoch = max(1, n // self.micro_batch // self.accumulation)
        self.state.total_steps = self.state.steps_per_epoch * self.config.training.epochs
        self.state.images_per_step = self.micro_batch * self.accumulation * world

    def fit_batch_size(self, fits) -> None:
        """Shrink the micro-batch (accelerate: by 10% a try) until `fits(batch_size)` runs without running out of memory, and raise the
        accumulation so the effective batch stays what the config asks for."""
        from accelerate.utils import find_executable_batch_size

        t = self.config.training
        target = t.batch_size * t.gradient_accumulation_steps

        @find_executable_batch_size(starting_batch_size=self.micro_batch)
        def probe(batch_size):
            fits(batch_size)
            return batch_size

        found = probe()
        self.set_batch_size(found, max(1, -(-target // found)))

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def fire(self, event: str, **kwargs) -> None:
        assert event in EVENTS, event
        for cb in self.callbacks:
            getattr(cb, f"on_{event}")(self, **kwargs)

    def request_stop(self, reason: str) -> None:
        if self.state.stop_reason is None:
            self.state.stop_reason = reason
        self.stop_event.set()

    def should_stop(self) -> bool:
        """Whether any process was asked to stop; every process gets the same answer and reason."""
        if self.accelerator.num_processes == 1:
            return self.stop_event.is_set()
        from accelerate.utils import gather_object

        reason = (self.state.stop_reason or USER_STOP) if self.stop_event.is_set() else None
        reason = next((r for r in gather_object([reason]) if r), None)
        if reason is not None:  # the same reason everywhere, even if a process had another one of its own
            self.state.stop_reason = reason
            self.stop_event.set()
        return reason is not None

    def mean_over_processes(self, value: float) -> float:
        """The mean of a number over all processes, so that they all take the same decisions from it."""
        if self.accelerator.num_processes == 1:
            return value
        return self.accelerator.reduce(torch.tensor(value, device=self.accelerator.device), "mean").item()

    def broadcast(self, value):
        """The main process's value of any picklable object, on every process."""
        if self.accelerator.num_processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    # Data -------------------------------------------------------------------------------------------

    def epoch_batches(self, epoch: int, skip_steps: int):
        """This process's share of a seeded permutation, in micro-batches, after `skip_steps` steps.

        The data is prepared on disk, so a batch is one indexing operation on its memory map (no DataLoader: it
        costs more than it brings here, and creating one draws from the global RNG). On a GPU the next batches
        are read ahead into pinned memory, unless reading one draws random numbers (super-resolution patches).
        """
        acc, ds = self.accelerator, self.family.splits.train
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(self.config.training.seed + epoch))
        share = order[acc.process_index::acc.num_processes]
        per_step = self.micro_batch * self.accumulation
        indices = share[skip_steps * per_step: self.state.steps_per_epoch * per_step]
        batches = (ds.batch(indices[start:start + self.micro_batch]) for start in range(0, len(indices), self.micro_batch))
        if acc.device.type == "cuda" and not getattr(ds, "draws_random", False):
            batches = prefetch(batches)
        yield from batches

    def prepare_batch(self, batch: dict) -> dict:
        return self.family.prepare_batch(batch)

    # Loop -------------------------------------------------------------------------------------------

    def fit(self) -> TrainState:
        s, epochs = self.state, self.config.training.epochs
        self.fire("start")
        try:
            while s.epoch < epochs and not self.should_stop():
                micro: list[dict] = []
                tick = time.perf_counter()
                for batch in self.epoch_batches(s.epoch, s.step_in_epoch):
                    micro.append(self.prepare_batch(batch))
                    if len(micro) < self.accumulation:
                        continue
                    s.logs = self.family.optimization_step(micro)
                    micro = []
                    s.step_seconds = time.perf_counter() - tick
                    s.global_step += 1
                    s.step_in_epoch += 1
                    s.loss_sum += s.logs.get(self.family.main_loss, 0.0)
                    s.loss_count += 1
                    self.fire("step_end", logs=s.logs)
                    if self.should_stop():
                        break
                    tick = time.perf_counter()
                if s.step_in_epoch >= s.steps_per_epoch:
                    s.epoch += 1
                    s.step_in_epoch = 0
                    s.epoch_loss = self.mean_over_processes(s.loss_sum / max(s.loss_count, 1))
                    s.loss_sum, s.loss_count = 0.0, 0
                    self.fire("epoch_end")
            if self.stop_event.is_set() and s.stop_reason is None:
                s.stop_reason = USER_STOP
        except BaseException as exc:
            self.fire("exception", exc=exc)
            raise
        self.fire("end")
        return s

    # Checkpoints ------------------------------------------------------------------------------------

    def gather_rng_states(self) -> list[dict]:
        """Every process's RNG state, in rank order (a collective: all processes must call it)."""
        if self.accelerator.num_processes == 1:
            return [rng_state()]
        from accelerate.utils import gather_object

        return gather_object([rng_state()])

    def training_state(self, rng_states: list[dict]) -> dict:
        s = self.state
        return {
            "family": self.family.state_dict(),
            "loop": {"epoch": s.epoch, "step_in_epoch": s.step_in_epoch, "global_step": s.global_step,
                     "loss_sum": s.loss_sum, "loss_count": s.loss_count, "epoch_loss": s.epoch_loss},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "rng": rng_states,
        }

    def load_training_state(self, state: dict) -> None:
        self.family.load_state_dict(state["family"])
        loop = state["loop"]
        self.state.epoch, self.state.step_in_epoch, self.state.global_step = loop["epoch"], loop["step_in_epoch"], loop["global_step"]
        # Checkpoints written before epoch losses moved into the loop carry none.
        self.state.loss_sum, self.state.loss_count = loop.get("loss_sum", 0.0), loop.get("loss_count", 0)
        self.state.epoch_loss = loop.get("epoch_loss", math.inf)
        for cb in self.callbacks:
            if type(cb).__name__ in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][type(cb).__name__])
        rngs = state["rng"]  # one per process that wrote it; a different process count reuses them in turn
        set_rng_state(rngs[self.accelerator.process_index % len(rngs)])

    def save_checkpoint(self, folder, rng_states: list[dict] | None = None) -> None:
        """Write the model and, given the processes' RNG states (checkpoint-<step>/), the resumable state,
        atomically. Main process only."""
        meta = {"family": self.family.name, "run": self.run.name, "step": self.state.global_step,
                "epoch": self.state.epoch, "loss": self.state.logs.get(self.family.main_loss), **self.family.meta()}
        with ckpt.atomic_dir(folder) as tmp:
            self.family.save_model(tmp)
            ckpt.write_meta(tmp, meta)
            self.fire("save", folder=tmp, target=Path(folder))  # more files that must appear with the model (a card)
            if rng_states is not None:
                ckpt.save_training_state(tmp, self.training_state(rng_states))
        self.fire("checkpoint", path=folder)


def rng_state() -> dict:
    np_state, py_state = np.random.get_state(), random.getstate()
    return {
        "python": list(py_state[1]), "python_gauss": py_state[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
