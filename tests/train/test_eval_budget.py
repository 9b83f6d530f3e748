"""Evaluations within a time budget (sized, skipped and said so) and a person's stop during an evaluation."""
import pytest

from pipelines.metrics.budget import plan_evaluations, sized_samples
from pipelines.store import RunStore
from pipelines.train.evaluation import Evaluator
from pipelines.train.run import train
from tests.conftest import assert_evaluations_fit, tiny_config

EVAL = {"every_epochs": 1, "num_samples": 32, "steps": 4, "final": True, "final_split": "val", "final_num_samples": 24}


def test_an_evaluation_is_sized_to_its_share_or_skipped():
    assert sized_samples(1000, None, 0.05, 0.15) == 1000  # no budget: as asked
    assert sized_samples(1000, 300.0, None, 0.15) == 1000  # speed not known yet: as asked
    assert sized_samples(1000, 300.0, 0.01, 0.15) == 1000  # 4,500 fit
    assert sized_samples(1000, 300.0, 0.05, 0.15) == 900  # 45 s at 20 samples/s: rounded down to a hundred
    assert sized_samples(500, 30.0, 0.062, 0.15) == 0  # the newcomer's 30-s run: 72 fit, too few for an FD
    assert sized_samples(32, 30.0, 0.062, 0.15) == 32  # a small count asked fits as it is
    assert sized_samples(1000, 300.0, 0.05, 0.1, seconds=6.0) == 100  # what is left decides


def test_the_plan_counts_evaluations_every_n_epochs_within_their_share():
    # 5 minutes at 20 samples/s, 1,000 samples asked: 900 each (45 s), at most 2 in 30% of the budget.
    plan = plan_evaluations(300.0, 0.05, 1000, every_epochs=10, final=True, final_num_samples=2000, epochs_in_budget=35)
    assert plan.samples == 900 and plan.count == 2 and plan.seconds_each == pytest.approx(45.0)
    assert plan.final_samples == 600 and plan.share == pytest.approx((2 * 45 + 30) / 300)
    # Few epochs: the closing evaluation only (epoch 7 of every 10).
    plan = plan_evaluations(300.0, 0.01, 1000, every_epochs=10, final=False, final_num_samples=2000, epochs_in_budget=7)
    assert (plan.samples, plan.count, plan.final_samples) == (1000, 1, 0) and plan.share == pytest.approx(10 / 300)
    # Too slow for any: no evaluation, so no best/ and no final evaluation either.
    plan = plan_evaluations(30.0, 0.062, 500, every_epochs=10, final=True, final_num_samples=2000, epochs_in_budget=3)
    assert (plan.samples, plan.count, plan.final_samples, plan.share) == (0, 0, 0, 0.0)


class FixedBudget:
    def __init__(self, budget, left):
        self.budget, self.left = budget, left

    def remaining(self):
        return self.left


def test_an_evaluation_that_does_not_fit_is_skipped():
    evaluator = Evaluator(tiny_config(evaluation={**EVAL, "num_samples": 200}), None, None)
    evaluator.budget = FixedBudget(300.0, 200.0)
    evaluator.size(0.1)  # 200 samples: 20 s each
    assert evaluator.num == 200 and evaluator.no_room(closing=False) is None
    evaluator.spent = 60.0  # with this one and the closing one: 100 s > 30% of 300 s
    assert "had their 30% of the 5 min time budget" in evaluator.no_room(closing=False)
    assert evaluator.no_room(closing=True) is None  # the closing one has its room kept
    evaluator.budget.left = 5.0
    assert "takes about 20 s and 5 s are left" in evaluator.no_room(closing=True)


def test_a_budgeted_run_sizes_its_evaluations_and_ends_near_its_budget(tmp_path):
    budget = 20.0
    cfg = tiny_config(training={"epochs": 100_000, "max_minutes": budget / 60, "checkpoint_every_epochs": 1000,
                                "sample_every_epochs": 1000},
                      evaluation={**EVAL, "every_epochs": 25, "num_samples": 2000, "steps": 20, "final_num_samples": 2000})
    row = train(cfg, tmp_path, progress=False)
    assert row["status"] == "completed" and row["end_reason"] == "time budget"
    during = RunStore(tmp_path).evaluations(row["name"], "training")
    log = (tmp_path / row["name"] / "log.txt").read_text()
    if during:  # a quiet machine: sized down from the 2,000 asked (the newcomer's 30-s run evaluated all 500)
        assert during[0]["num_samples"] < 2000 and f"evaluations sized to {during[0]['num_samples']} of 2000 samples" in log
        assert_evaluations_fit(during, budget, every_epochs=25, last_step=row["step"])
    else:  # a busy one: too slow for 100 samples in 3 s
        assert "evaluations skipped: fewer than 100 samples fit in 15% of the 20 s time budget" in log
    # The run after start-up (from when the budget began) ends near its budget: loosely, for a busy machine where one
    # step can take seconds (the newcomer's 30-s runs took 55-73 s).
    started = row["budget_ends_at"] - budget
    assert row["ended_at"] - started <= 1.5 * budget + 5


def stop_when(phase_prefix: str, monkeypatch, phases: list):
    """Ask the run to stop (as the app's Stop button does, through the store) when a phase starting so is shown."""
    original = RunStore.set_phase

    def set_phase(self, name, phase, done=None, total=None):
        phases.append(phase)
        if phase and phase.startswith(phase_prefix):
            self.request_stop(name)
        return original(self, name, phase, done, total)

    monkeypatch.setattr(RunStore, "set_phase", set_phase)


def test_stop_during_an_evaluation_ends_the_run_stopped_at_once(tmp_path, monkeypatch):
    phases = []
    stop_when("evaluating", monkeypatch, phases)
    cfg = tiny_config(training={"epochs": 50}, evaluation={**EVAL, "num_samples": 2000, "steps": 20})
    row = train(cfg, tmp_path, progress=False)
    assert row["status"] == "stopped" and row["end_reason"] == "stop requested"
    # Asked after the first batch of 64: a sampler step of a later batch saw it, long before the 2,000 asked.
    evaluating = [p for p in phases if p and p.startswith("evaluating")]
    assert evaluating[0] == "evaluating: 64 / 2,000 samples" and "evaluating: 2,000 / 2,000 samples" not in evaluating
    store = RunStore(tmp_path)
    assert store.evaluations(row["name"]) == [] and row["epoch"] == 1
    folder = tmp_path / row["name"]
    assert not (folder / "final").exists() and (folder / f"checkpoint-{row['step']}").is_dir()  # resumable
    log = (folder / "log.txt").read_text()
    assert "evaluation at epoch 1 stopped: a person asked the run to stop" in log and "final evaluation" not in log


def test_stop_during_the_final_evaluation_ends_the_run_stopped(tmp_path, monkeypatch):
    phases = []
    stop_when("final evaluation", monkeypatch, phases)
    cfg = tiny_config(training={"epochs": 1}, evaluation={**EVAL, "final_num_samples": 2000, "steps": 20})
    row = train(cfg, tmp_path, progress=False)
    assert row["status"] == "stopped" and row["end_reason"] == "stop requested"
    assert RunStore(tmp_path).evaluations(row["name"], "final") == []
    assert [p for p in phases if p and p.startswith("final evaluation")] == ["final evaluation: 0 / 2,000 samples"]
    log = (tmp_path / row["name"] / "log.txt").read_text()
    assert "final evaluation stopped: a person asked the run to stop" in log


def test_stop_while_extracting_real_features_writes_no_cache(tmp_path):
    import torch

    from pipelines.data.source import StopRequested
    from pipelines.metrics.distance import real_features
    from pipelines.metrics.extractors import load_extractor

    extractor = load_extractor("hog-colour", tmp_path, "cpu")
    images = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8)
    with pytest.raises(StopRequested, match="real images' features"):
        real_features(tmp_path, images, "x", "train", extractor, 100, chunk=8, should_stop=lambda: True)
    assert not any((tmp_path / "real-features").glob("*")) if (tmp_path / "real-features").exists() else True
