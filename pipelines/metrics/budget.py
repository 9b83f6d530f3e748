"""How evaluations share a run's time budget: each one sized to fit, skipped when it cannot, and the log says so.

A budget is the whole run's: the evaluations during training (the closing one included) take at most
TRAINING_SHARE of it, any one of them at most EACH_SHARE (fewer samples than asked, the same count for all of a
run's evaluations so that their numbers compare), and the final evaluation at most FINAL_SHARE. The training run
and the Train tab's budget line (pipelines.api.plan_evaluations) both plan from here (no torch here).
"""
from __future__ import annotations

from dataclasses import dataclass

EACH_SHARE = 0.15  # one evaluation during training
TRAINING_SHARE = 0.3  # all the evaluations during training, the closing one included
FINAL_SHARE = 0.1  # the final evaluation (of best/ on the held-out split)
MIN_SAMPLES = 100  # fewer make FD meaningless: an evaluation that cannot have them is skipped
# Before an evaluation of a family without a speed probe has been timed, a budget keeps this share for the closing one.
UNTIMED_SHARE = 0.2


def sized_samples(asked: int, budget: float | None, sample_seconds: float | None, share: float,
                  seconds: float | None = None) -> int:
    """The samples of an evaluation that must fit in `share` of a `budget` (and in `seconds`, when given): as asked when
    they fit (or nothing is known), else rounded down to a hundred (runs of one sweep then score alike); 0 when fewer
    than MIN_SAMPLES (or than asked, if that is fewer) fit."""
    if not budget or sample_seconds is None:
        return asked
    room = share * budget if seconds is None else min(share * budget, seconds)
    fits = int(max(room, 0.0) / max(sample_seconds, 1e-9))
    if fits >= asked:
        return asked
    rounded = fits // 100 * 100 if fits >= 100 else fits
    return rounded if rounded >= min(MIN_SAMPLES, asked) else 0


@dataclass(frozen=True)
class EvaluationPlan:
    """What the evaluations of a run with a time budget will take, from a measured seconds-per-sample."""
    samples: int  # per evaluation during training (0: they are skipped)
    count: int  # evaluations during training, the closing one included
    seconds_each: float
    final_samples: int  # 0: no final evaluation (off, or it does not fit)
    final_seconds: float
    budget: float

    @property
    def share(self) -> float:
        return (self.count * self.seconds_each + self.final_seconds) / self.budget


def plan_evaluations(budget: float, sample_seconds: float, num_samples: int, every_epochs: int,
                     final: bool, final_num_samples: int, epochs_in_budget: float | None = None) -> EvaluationPlan:
    """The plan of a `budget` (seconds) at `sample_seconds` per generated and scored image: per-evaluation samples,
    how many evaluations (every `every_epochs` of the `epochs_in_budget`, plus the closing one, as the share allows),
    and the final evaluation's size."""
    samples = sized_samples(num_samples, budget, sample_seconds, EACH_SHARE) if every_epochs else 0
    each = samples * sample_seconds
    count = 0
    if samples:
        most = max(1, int(TRAINING_SHARE * budget / max(each, 1e-9)))
        periodic = int(epochs_in_budget // every_epochs) if epochs_in_budget is not None else most
        count = min(most, periodic + 1)
    # best/ comes from the evaluations: without them there is nothing for the final one to score.
    final_samples = sized_samples(final_num_samples, budget, sample_seconds, FINAL_SHARE) if final and samples else 0
    return EvaluationPlan(samples, count, each, final_samples, final_samples * sample_seconds, budget)


def share_rules(sized: bool = True) -> str:
    """The rules above in words, for a person choosing a budget (`sized`: FD evaluations, whose sample count is fitted;
    others are only skipped)."""
    if not sized:
        return (f"all those during training at most {TRAINING_SHARE:.0%} of the budget: one that would not fit is "
                "skipped (the log says so)")
    return (f"each evaluation during training at most {EACH_SHARE:.0%} of the budget and all of them at most "
            f"{TRAINING_SHARE:.0%}, the final one at most {FINAL_SHARE:.0%}: sized down, or skipped (the log says so) "
            "when they do not fit")
