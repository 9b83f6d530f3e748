"""Crash safety of the run folder: a kill while pruning or while replacing best/ never leaves a listed checkpoint
that fails to load, and best/ is whole (or restored by the next listing)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines import checkpoints as ckpt
from pipelines.sample.models import load_model, sample_model
from pipelines.store import RunStore
from pipelines.train.run import train
from studio.views import checkpoint_choices
from tests.conftest import ROOT, tiny_config


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs."""


def assert_every_listed_checkpoint_loads(run_dir):
    listed = ckpt.run_checkpoints(run_dir)
    assert listed
    for info in listed:
        images = sample_model(load_model(info.path), sampler="ddim", steps=2, num=1)
        assert images.shape == (1, 8, 8, 1)
    return {info.path.name for info in listed}


def test_a_kill_in_the_middle_of_pruning_leaves_no_visible_checkpoint_that_fails_to_load(tmp_path, monkeypatch):
    real_rmtree = shutil.rmtree

    def killed_while_deleting(path, *args, **kwargs):
        if os.path.basename(path).startswith(".pruned-"):
            real_rmtree(os.path.join(path, "unet"))  # as found: studio.json and training_state.pt, no weights
            raise Killed
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_while_deleting)
    with pytest.raises(Killed):
        train(tiny_config(training={"epochs": 3, "keep_last": 1}), tmp_path, progress=False)
    monkeypatch.undo()
    run_dir = tmp_path / "ddpm-digits-8"
    assert [p.name for p in run_dir.glob(".pruned-*")]  # the half-deleted folder is there, hidden
    assert assert_every_listed_checkpoint_loads(run_dir) == {"checkpoint-10", "best"}
    offered = [label.split(" (")[0] for label, _ in checkpoint_choices(RunStore(tmp_path))]  # what the app lists
    assert offered == ["ddpm-digits-8 · best", "ddpm-digits-8 · checkpoint-10"]
    resumed = train(resume=run_dir, progress=False)  # a resume cleans the leftover up
    assert resumed["status"] == "completed" and not list(run_dir.glob(".pruned-*"))


KILL_DURING_REPLACEMENT = """
import os, shutil, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from pipelines import checkpoints as ckpt

run, where = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace
if where == "between-renames":  # no atomic swap on this system: killed after best/ was moved aside
    ckpt.exchange = lambda a, b: False
    def replace(a, b):
        real_replace(a, b)
        if Path(b).name.startswith(".old-"):
            os._exit(9)
    os.replace = replace
with ckpt.atomic_dir(run / "best") as tmp:
    shutil.copytree(run / "final", tmp, dirs_exist_ok=True)
    ckpt.write_meta(tmp, {**ckpt.read_meta(tmp), "step": 999})
    if where == "after-swap":  # killed before the old copy is deleted
        shutil.rmtree = lambda *a, **k: os._exit(9)
"""


@pytest.fixture
def run_copy(trained_run, tmp_path):
    _, folder = trained_run
    run_dir = tmp_path / folder.name
    shutil.copytree(folder, run_dir)
    return run_dir


def kill_while_replacing_best(run_dir, where):
    child = subprocess.run([sys.executable, "-c", KILL_DURING_REPLACEMENT, str(run_dir), where, str(ROOT)])
    assert child.returncode == 9


def test_best_is_whole_at_every_instant_when_its_replacement_is_killed(run_copy):
    old_step = ckpt.read_meta(run_copy / "best")["step"]
    kill_while_replacing_best(run_copy, "after-swap")
    assert ckpt.read_meta(run_copy / "best")["step"] == 999  # the new one, complete
    leftover = [p for p in run_copy.iterdir() if ckpt.HIDDEN_RE.match(p.name)]
    assert [ckpt.read_meta(p)["step"] for p in leftover] == [old_step]  # the old copy, hidden
    assert assert_every_listed_checkpoint_loads(run_copy) == {"best", "final", "checkpoint-25", "checkpoint-30"}


def test_best_is_restored_by_the_next_listing_when_a_replacement_was_interrupted(run_copy):
    old_meta = ckpt.read_meta(run_copy / "best")
    kill_while_replacing_best(run_copy, "between-renames")
    assert not (run_copy / "best").exists() and list(run_copy.glob(".old-best-*"))  # the kill's moment
    assert assert_every_listed_checkpoint_loads(run_copy) == {"best", "final", "checkpoint-25", "checkpoint-30"}
    assert json.loads((run_copy / "best" / ckpt.META_FILE).read_text()) == old_meta
    assert not list(run_copy.glob(".old-*"))


def test_a_live_writers_folder_is_not_restored_under_it(run_copy):
    aside = run_copy / f".old-best-{os.getpid()}"  # this process is alive: it will finish its own replacement
    os.replace(run_copy / "best", aside)
    assert "best" not in {info.kind for info in ckpt.run_checkpoints(run_copy)} and aside.exists()
    ckpt.clean_partial(run_copy)  # a run's own start restores it whatever the pid
    assert (run_copy / "best").is_dir() and not aside.exists()
