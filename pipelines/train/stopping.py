"""A person's stop during what is not a training step (evaluations, the final evaluation, their sampling)."""
from __future__ import annotations

import logging
import math
import time

from .loop import USER_STOP

STOP_POLL = 0.25  # seconds between two reads of the stop flag during an evaluation


class StopWatch:
    """Whether a person asked the run to stop, for evaluations: the store's flag (the app's Stop, from any process), or
    the trainer's stop event while nothing else (the budget, a plateau) has stopped it. Read at most every STOP_POLL s,
    so that it can be asked at every sampler step."""

    def __init__(self, trainer):
        self.trainer, self.last, self.asked = trainer, -math.inf, False

    def __call__(self) -> bool:
        if not self.asked and time.monotonic() - self.last >= STOP_POLL:
            self.last, t = time.monotonic(), self.trainer
            self.asked = t.run.store.stop_requested(t.run.name) or \
                (t.stop_event.is_set() and t.state.stop_reason in (None, USER_STOP))
        return self.asked


def stopped_by_person(trainer, log: logging.Logger, during: str) -> None:
    """A stop during an evaluation ends the run as stopped, whatever else (the budget) was ending it."""
    trainer.state.stop_reason = USER_STOP
    trainer.stop_event.set()
    log.info("%s stopped: a person asked the run to stop", during)
