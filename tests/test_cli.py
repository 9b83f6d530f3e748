import subprocess
import sys

import numpy as np
import yaml

from pipelines.store import RunStore
from tests.conftest import ROOT, tiny_config


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_train_then_sample_from_the_command_line(tmp_path, sr_model):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    ws = tmp_path / "ws"
    done = run_cli("train", "--config", config, "--workspace", ws, "--name", "cli_run", "--set", "training.epochs=1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "run cli_run completed" in done.stdout
    assert RunStore(ws).get_run("cli_run")["status"] == "completed"
    out = tmp_path / "s.npy"
    done = run_cli("sample", "--checkpoint", ws / "cli_run" / "final", "--sampler", "ddim", "--steps", 5, "--num", 6,
                   "--seed", 0, "--out", out)
    assert done.returncode == 0, done.stderr
    assert np.load(out).shape == (6, 8, 8, 1)
    done = run_cli("sample", "--checkpoint", ws / "cli_run" / "final", "--interpolate", "--frames", 4, "--steps", 4,
                   "--out", tmp_path / "lerp.png")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lerp.png").exists() and (tmp_path / "lerp.gif").exists()
    done = run_cli("sample", "--compare", ws / "cli_run" / "final", ws / "cli_run" / "best", "--steps", 3, "--num", 2,
                   "--out", tmp_path / "cmp.png")
    assert done.returncode == 0, done.stderr
    done = run_cli("chain", "--checkpoint", ws / "cli_run" / "final", "--upscaler", sr_model, "--passes", 2, "--num", 2,
                   "--steps", 3, "--gamma", 1.1, "--out", tmp_path / "chain")
    assert done.returncode == 0, done.stderr
    assert "-> 32x32" in done.stdout and "upscale" in done.stdout and (tmp_path / "chain" / "comparison.png").exists()
    # Resume the finished run for one more epoch.
    done = run_cli("train", "--resume", ws / "cli_run", "--set", "training.epochs=2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert RunStore(ws).get_run("cli_run")["epoch"] == 2


def test_config_errors_name_the_field_and_exit_2(tmp_path):
    done = run_cli("train", "--workspace", tmp_path, "--set", "training.batch_size=-3", "--set", "data.colour=1")
    assert done.returncode == 2
    assert "training.batch_size" in done.stderr and "data.colour: unknown key" in done.stderr
    assert not (tmp_path / "runs.sqlite").exists()


def test_ctrl_c_stops_with_a_resumable_checkpoint(tmp_path):
    import signal
    import time

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(training={"epochs": 10000}).model_dump(mode="json")))
    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "train", "--config", str(config), "--workspace", str(ws),
                             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = RunStore(ws).list_runs() if (ws / "runs.sqlite").exists() else []
        if runs and runs[0]["step"] > 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopping after this step" in err
    row = RunStore(ws).list_runs()[0]
    assert row["status"] == "stopped"
    from pipelines.checkpoints import resolve_resume

    assert resolve_resume(row["folder"]).name == f"checkpoint-{row['step']}"
