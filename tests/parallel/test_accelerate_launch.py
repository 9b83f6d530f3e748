"""The train command under `accelerate launch` with 2 CPU processes (gloo), then resumed in one process."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import checkpoints as ckpt
from pipelines.store import RunStore
from tests.conftest import ROOT, tiny_config


def test_two_processes_train_and_one_resumes(tmp_path):
    launcher = Path(sys.executable).parent / "accelerate"
    if not launcher.exists() and not shutil.which("accelerate"):
        pytest.fail("accelerate's launcher is not installed next to this Python")
    config = tmp_path / "tiny.yaml"
    evaluation = {"every_epochs": 1, "num_samples": 24, "steps": 3, "final": True, "final_split": "val", "final_num_samples": 16}
    config.write_text(yaml.safe_dump(tiny_config(training={"epochs": 2}, evaluation=evaluation).model_dump(mode="json")))
    ws = tmp_path / "ws"
    cmd = [str(launcher if launcher.exists() else "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "pipelines", "train", "--config", str(config), "--workspace", str(ws), "--quiet"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = RunStore(ws).list_runs()
    assert len(runs) == 1 and runs[0]["status"] == "completed"  # one run, written by the main process only
    folder = Path(runs[0]["folder"])
    # 96 images * 0.9 = 86 train -> 43 per process -> 2 steps of 16 per epoch on each.
    assert runs[0]["total_steps"] == 4
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["checkpoint-2", "checkpoint-4"]
    steps = [m["step"] for m in RunStore(ws).metrics(runs[0]["name"], ["loss"])]
    assert steps == sorted(set(steps))  # no duplicate rows from the second process
    assert (folder / "log.txt").read_text().count("saved final") == 1
    # The main process evaluates; both take the same best/ decisions from its numbers (a mismatch would hang).
    evaluations = RunStore(ws).evaluations(runs[0]["name"])
    assert [(e["kind"], e["step"]) for e in evaluations] == [("training", 2), ("training", 4), ("final", ckpt.read_meta(folder / "best")["step"])]
    assert runs[0]["best_metric"] == "FD (digits-cnn)"
    done = subprocess.run([sys.executable, "-m", "pipelines", "train", "--resume", str(folder), "--set", "training.epochs=3",
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = RunStore(ws).get_run(runs[0]["name"])
    assert row["status"] == "completed" and row["epoch"] == 3
