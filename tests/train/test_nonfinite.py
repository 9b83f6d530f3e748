"""Non-finite losses and gradients: the step is skipped and counted, too many in a row fail the run naming the
last good checkpoint, and nothing with NaN or inf weights is ever saved."""
import itertools
import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from pipelines import checkpoints as ckpt
from pipelines.config import ConfigError, validate_config
from pipelines.store import RunStore
from pipelines.families.gan import train as gan_module
from pipelines.train.callbacks import Callback
from pipelines.families.ddpm.train import DDPMFamily
from pipelines.train.precision import Precision
from pipelines.train.run import train
from pipelines.families.sr.train import SRFamily
from tests.conftest import tiny_config
from tests.train.test_gan import tiny_gan
from tests.train.test_sr import tiny_sr


def poisoned(loss_fn, bad):
    """`loss_fn` whose n-th call (from 1) gets an infinite gradient when bad(n); the loss value stays finite,
    as in the super-resolution run at learning rate 1.0 that saved NaN weights."""
    calls = itertools.count(1)

    def wrapper(*args):
        out = loss_fn(*args)
        if bad(next(calls)):
            (out[0] if isinstance(out, tuple) else out).register_hook(lambda g: g * math.inf)
        return out
    return wrapper


def inject(monkeypatch, family: str, bad) -> None:
    if family == "gan":
        monkeypatch.setattr(gan_module, "d_loss_fn", poisoned(gan_module.d_loss_fn, bad))
    else:
        cls = {"ddpm": DDPMFamily, "sr": SRFamily}[family]
        monkeypatch.setattr(cls, "compute_loss", poisoned(cls.compute_loss, bad))


CONFIGS = {
    "ddpm": lambda **s: tiny_config(**s),
    "gan": lambda **s: tiny_gan(**s),
    "sr": lambda **s: tiny_sr(evaluation={"every_epochs": 0, "final": False}, **s),
}


def saved_folders(run_dir):
    return [p for p in run_dir.iterdir() if p.is_dir() and (p.name in ("best", "final") or ckpt.CHECKPOINT_RE.match(p.name))]


def assert_all_finite(run_dir):
    for folder in saved_folders(run_dir):
        files = list(folder.rglob("*.safetensors"))
        assert files, folder
        for f in files:
            assert all(torch.isfinite(t).all() for t in load_file(f).values()), f
        if (folder / ckpt.STATE_FILE).exists():
            bad, total = ckpt.nonfinite_tensors(ckpt.load_training_state(folder))
            assert bad == [] and total > 0, folder


@pytest.mark.parametrize("family", ["ddpm", "gan", "sr"])
def test_an_infinite_gradient_skips_the_step_and_every_saved_checkpoint_is_finite(tmp_path, monkeypatch, family):
    inject(monkeypatch, family, lambda n: n in (2, 3))
    row = train(CONFIGS[family](training={"epochs": 2, "checkpoint_every_epochs": 1, "log_every_steps": 1}), tmp_path,
                progress=False)
    assert row["status"] == "completed"
    store = RunStore(tmp_path)
    skipped = [m["value"] for m in store.metrics(row["name"]) if m["name"] == "skipped_steps"]
    assert skipped[-1] == 2
    assert all(math.isfinite(m["value"]) for m in store.metrics(row["name"]))
    run_dir = tmp_path / row["name"]
    assert "step skipped, not applied" in (run_dir / "log.txt").read_text()
    assert {p.name for p in saved_folders(run_dir)} >= {"final"} and ckpt.list_checkpoints(run_dir)
    assert_all_finite(run_dir)


@pytest.mark.parametrize("family", ["ddpm", "sr"])
def test_skips_in_a_row_fail_the_run_naming_the_last_good_checkpoint(tmp_path, monkeypatch, family):
    config = CONFIGS[family](training={"epochs": 3, "checkpoint_every_epochs": 1, "max_skipped_steps": 3})
    first_bad = 0

    class Watch(Callback):  # the poison starts one step into the second epoch
        def on_epoch_end(self, trainer):
            nonlocal first_bad
            first_bad = first_bad or trainer.state.global_step + 2

    inject(monkeypatch, family, lambda n: first_bad and n >= first_bad)
    with pytest.raises(Exception, match="3 steps in a row were skipped"):
        train(config, tmp_path, progress=False, extra_callbacks=[Watch()])
    row = RunStore(tmp_path).list_runs()[0]
    run_dir = tmp_path / row["name"]
    first = f"checkpoint-{first_bad - 2}"
    assert row["status"] == "failed"
    assert f"the last good checkpoint is {first}/" in row["error"] and "training.max_skipped_steps" in row["error"]
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == [first] and not (run_dir / "final").exists()
    assert_all_finite(run_dir)


def test_a_run_failing_before_any_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    inject(monkeypatch, "ddpm", lambda n: True)
    with pytest.raises(Exception, match="2 steps in a row"):
        train(tiny_config(training={"max_skipped_steps": 2}), tmp_path, progress=False)
    row = RunStore(tmp_path).list_runs()[0]
    assert "no checkpoint was saved" in row["error"]
    assert saved_folders(tmp_path / row["name"]) == []


def test_weights_that_became_nan_are_never_saved(tmp_path):
    class Corrupt(Callback):  # weights overflowing under finite gradients, in the middle of epoch 2
        def on_step_end(self, trainer, logs):
            if trainer.state.global_step == trainer.state.steps_per_epoch + 2:
                next(trainer.family.raw_model.parameters()).data.fill_(math.nan)

    with pytest.raises(Exception, match="hold NaN or inf"):
        train(tiny_config(training={"epochs": 3}), tmp_path, progress=False, extra_callbacks=[Corrupt()])
    row = RunStore(tmp_path).list_runs()[0]
    run_dir = tmp_path / row["name"]
    steps = ckpt.read_meta(ckpt.list_checkpoints(run_dir)[0])["step"]
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == [f"checkpoint-{steps}"]
    assert "was not written" in row["error"] and f"checkpoint-{steps}/" in row["error"]
    assert not (run_dir / "final").exists()
    assert_all_finite(run_dir)


@pytest.mark.parametrize("mode", ["no", "fp16"])
def test_a_step_with_an_infinite_gradient_changes_no_weight(mode):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    precision = Precision(mode, torch.device("cpu"))  # fp16: the grad scaler's path, on the CPU
    accelerator = SimpleNamespace(backward=lambda loss: loss.backward())
    before = [p.detach().clone() for p in model.parameters()]
    scale = precision.scaler.get_scale() if precision.scaler else None
    precision.backward(model(torch.ones(1, 4)).sum(), accelerator)
    model.weight.grad[0, 0] = math.inf
    assert precision.step(optimizer, list(model.parameters()), 1.0) == math.inf
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    if scale is not None:
        assert precision.scaler.get_scale() < scale  # backed off, as for an overflow
    optimizer.zero_grad()
    precision.backward(model(torch.ones(1, 4)).sum(), accelerator)
    assert math.isfinite(precision.step(optimizer, list(model.parameters()), 1.0))
    assert not torch.equal(before[0], model.weight)


def test_max_skipped_steps_is_validated():
    with pytest.raises(ConfigError) as err:
        validate_config({"training": {"max_skipped_steps": 0}})
    assert [f for f, _ in err.value.errors] == ["training.max_skipped_steps"]
    assert validate_config({}).training.max_skipped_steps == 10
