"""Mode-collapse watch for GANs: a warning on the run when its samples lose their variety or FID jumps, and
optionally a roll-back to best/ with a lower discriminator learning rate."""
from __future__ import annotations

import logging
import math

from ...train.callbacks import Callback


class CollapseWatch(Callback):
    """Warns when the variety of the samples falls below `ratio` of the real images' and below `ratio` of
    its own peak (an untrained generator starts with little), or when FD exceeds `fd_jump` times its best
    (0: never); marks such an evaluation "collapsed", which keeps it from best/ and early stopping."""

    def __init__(self, ratio: float, fd_jump: float, rollback: bool, run, logger: logging.Logger):
        self.ratio, self.fd_jump, self.rollback, self.run, self.log = ratio, fd_jump, rollback, run, logger
        self.best_fd, self.scale, self.peak = math.inf, "", 0.0  # peak: the highest variety share so far

    def on_evaluation(self, trainer, metrics: dict) -> None:
        if metrics["scale"] != self.scale:
            self.scale, self.best_fd, self.peak = metrics["scale"], math.inf, 0.0
        reasons = []
        share = metrics["diversity"] / max(metrics["real_diversity"], 1e-12)
        # Collapse is variety *falling*: an untrained generator starts with little, and that is no warning.
        if self.ratio and share < self.ratio and share < self.ratio * self.peak:
            reasons.append(f"sample variety fell to {share:.0%} of the real images' (from {self.peak:.0%})")
        self.peak = max(self.peak, share)
        if self.fd_jump and math.isfinite(self.best_fd) and metrics["fd"] > self.fd_jump * self.best_fd:
            reasons.append(f"{metrics['label']} jumped to {metrics['fd']:.4g} from a best of {self.best_fd:.4g}")
        self.best_fd = min(self.best_fd, metrics["fd"])
        if not reasons:
            return
        metrics["collapsed"] = True  # the checkpointer (after this callback) keeps best/ as it is
        best = self.run.folder / "best"
        action = ""
        if self.rollback and best.is_dir():
            trainer.family.load_generator_weights(best)
            trainer.family.scale_learning_rate(0.5, which="d")
            action = "; rolled back to best/ and halved the discriminator's learning rate"
        warning = f"possible mode collapse at epoch {trainer.state.epoch}: {' and '.join(reasons)}{action}"
        self.log.warning(warning)
        if trainer.is_main:
            self.run.store.update_run(self.run.name, warning=warning)

    def state_dict(self) -> dict:
        return {"best_fd": self.best_fd, "scale": self.scale, "peak": self.peak}

    def load_state_dict(self, state: dict) -> None:
        self.best_fd, self.scale, self.peak = state["best_fd"], state["scale"], state["peak"]
