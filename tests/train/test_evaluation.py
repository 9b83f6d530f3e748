"""Evaluation during training: FD/KID rows, best/ by FD, the final evaluation, early stopping, `evaluate`."""
import math

import pytest
import torch
from safetensors.torch import load_file

from pipelines import checkpoints as ckpt
from pipelines.cli import main
from pipelines.store import RunStore
from pipelines.train.evaluation import EarlyStopping
from pipelines.train.loop import Trainer
from pipelines.train.run import RunHandle, build_trainer, run_logger, train
from tests.conftest import tiny_config

EVAL = {"every_epochs": 1, "num_samples": 32, "steps": 4, "final": True, "final_split": "val", "final_num_samples": 24}


def test_training_evaluates_and_best_follows_fd(tmp_path):
    row = train(tiny_config(training={"epochs": 3}, evaluation=EVAL), tmp_path, progress=False)
    store = RunStore(tmp_path)
    during = store.evaluations(row["name"], "training")
    assert [e["epoch"] for e in during] == [1, 2, 3]
    assert all(e["extractor"] == "digits-cnn" and e["num_samples"] == 32 and e["split"] == "train" and e["seconds"] > 0
               and math.isfinite(e["fd"]) and e["fd"] > 0 for e in during)
    best = min(during, key=lambda e: e["fd"])
    assert row["best_metric"] == "FD (digits-cnn)" and row["best_value"] == pytest.approx(best["fd"])
    assert ckpt.read_meta(row["folder"] + "/best")["step"] == best["step"]
    [final] = store.evaluations(row["name"], "final")
    assert final["checkpoint"] == "best" and final["split"] == "val" and final["num_samples"] == 24
    log = open(row["folder"] + "/log.txt").read()
    assert "evaluation at epoch 3: FD (digits-cnn)" in log and "final evaluation: FD (digits-cnn)" in log
    assert (tmp_path / "cache" / "real-features").is_dir()
    assert row["end_reason"] == "epochs" and row["phase"] is None


def test_a_budget_too_short_for_evaluations_skips_them_and_says_so(tmp_path, monkeypatch):
    phases = []
    original = RunStore.set_phase
    monkeypatch.setattr(RunStore, "set_phase", lambda self, name, phase, done=None, total=None: (
        phases.append((phase, done, total)), original(self, name, phase, done, total))[1])
    cfg = tiny_config(training={"epochs": 1000, "max_minutes": 0.0001}, evaluation={**EVAL, "final_num_samples": 200})
    row = train(cfg, tmp_path, progress=False)
    assert row["status"] == "completed" and row["end_reason"] == "time budget"
    # A few samples were timed at the start: not even 32 fit in 15% of 6 ms, so no evaluation runs, and the log says so.
    assert ("timing an evaluation sample", None, None) in phases and phases[-1] == (None, None, None)
    assert not any(p and p.startswith("evaluating") for p, _, _ in phases)
    assert RunStore(tmp_path).evaluations(row["name"]) == []
    log = open(row["folder"] + "/log.txt").read()
    assert "evaluations skipped: fewer than 32 samples fit in 15% of the 0 s time budget" in log
    assert "closing evaluation skipped: fewer than 32 samples fit" in log
    assert (tmp_path / row["name"] / "final").is_dir() and not (tmp_path / row["name"] / "best").exists()


def test_the_final_evaluation_is_sized_to_its_share_of_the_budget(tmp_path):
    from pipelines.train.evaluation import FINAL_SHARE, UNTIMED_SHARE, Evaluator

    cfg = tiny_config(evaluation={**EVAL, "final_num_samples": 2000})
    evaluator = Evaluator(cfg, None, None)
    assert evaluator.final_samples(300.0) == 2000  # untimed: as asked
    assert evaluator.after_training(300.0) == pytest.approx((UNTIMED_SHARE + FINAL_SHARE) * 300)
    evaluator.sample_seconds = 0.025  # 40 samples/s
    assert evaluator.final_samples(300.0) == 1200  # a tenth of 5 minutes at 40 samples/s
    assert evaluator.final_samples(300.0, seconds_left=10.0) == 400
    assert evaluator.final_samples(300.0, seconds_left=2.0) == 0  # 80 samples: fewer than 100 make no FD
    assert evaluator.final_samples(None) == 2000  # no budget: as asked
    # What follows training: the closing evaluation (its 32 samples) and the final one.
    assert evaluator.after_training(300.0) == pytest.approx(32 * 0.025 + 1200 * 0.025)


def test_evaluation_leaves_the_training_trajectory_unchanged(tmp_path):
    on = train(tiny_config(training={"epochs": 2}, evaluation=EVAL), tmp_path / "on", progress=False)
    off = train(tiny_config(training={"epochs": 2}), tmp_path / "off", progress=False)
    weights = [load_file(f"{row['folder']}/final/unet/diffusion_pytorch_model.safetensors") for row in (on, off)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # The RNG states saved at the end (what a resume continues from) are untouched too.
    states = [ckpt.load_training_state(ckpt.list_checkpoints(row["folder"])[-1])["rng"][0]["torch"] for row in (on, off)]
    assert torch.equal(*states)


def make_trainer(tmp_path, config=None, **sections) -> Trainer:
    """A trainer of a run called "run" in tmp_path (of `config`, or the tiny DDPM config with `sections`)."""
    from accelerate import Accelerator

    from pipelines.store import RunStore

    config = config or tiny_config(**sections)
    RunStore(tmp_path).create_run("run", config.family, config.data.dataset, config.data.image_size, "", str(tmp_path / "run"))
    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    run = RunHandle("run", folder, RunStore(tmp_path), run_logger("run", folder, True))
    return build_trainer(config, run, Accelerator(cpu=True), None, progress=False)


def test_fd_plateau_cuts_the_learning_rate_then_stops(tmp_path):
    trainer = make_trainer(tmp_path, early_stopping={"patience": 2, "max_lr_cuts": 1, "lr_factor": 0.5},
                           evaluation={"every_epochs": 1})
    stopper = next(cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping))
    family = trainer.family
    base = family.lr_scheduler.base_lrs[0]
    for fd in (5.0, 4.0, 4.5, 4.2):  # two evaluations without a better FD
        stopper.on_evaluation(trainer, {"value": fd, "fd": fd, "label": "FD (digits-cnn)", "scale": "FD (digits-cnn), 32 samples vs train"})
    assert family.lr_scheduler.base_lrs[0] == pytest.approx(base / 2) and trainer.state.stop_reason is None
    family.optimizer.step()  # no gradients: changes nothing, but the scheduler expects it first
    family.lr_scheduler.step()
    assert family.optimizer.param_groups[0]["lr"] == pytest.approx(family.lr_scheduler.get_last_lr()[0])
    state = family.state_dict()  # the cut is part of the resumable state
    for fd in (4.1, 4.3):
        stopper.on_evaluation(trainer, {"value": fd, "fd": fd, "label": "FD (digits-cnn)", "scale": "FD (digits-cnn), 32 samples vs train"})
    assert trainer.state.stop_reason == "FD (digits-cnn) plateau"
    fresh = make_trainer(tmp_path / "again")
    fresh.family.load_state_dict(state)
    assert fresh.family.lr_scheduler.base_lrs[0] == pytest.approx(base / 2)


def test_loss_rule_stops_a_run_that_no_longer_improves(tmp_path):
    row = train(tiny_config(training={"epochs": 40}, early_stopping={"loss_below": 100.0, "loss_patience": 1}),
                tmp_path, progress=False)
    assert row["status"] == "completed" and row["epoch"] < 40
    assert (tmp_path / row["name"] / "final").is_dir()
    assert "has not improved for 1 epochs: stopping" in (tmp_path / row["name"] / "log.txt").read_text()


def test_evaluate_command_prints_and_stores(trained_run, capsys):
    ws, folder = trained_run
    assert main(["evaluate", "--checkpoint", str(folder / "final"), "--num", "40", "--split", "val", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "FD (digits-cnn)" in out and "40 samples vs" in out and "val images" in out
    final = RunStore(ws).evaluations(folder.name, "final")[-1]
    assert final["checkpoint"] == "final" and final["split"] == "val" and final["step"] == ckpt.read_meta(folder / "final")["step"]


def test_evaluate_command_refuses_what_it_cannot_score(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "loose").mkdir()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "loose")]) == 2
    assert "not inside a studio run folder" in capsys.readouterr().err
