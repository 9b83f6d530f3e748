"""W&B and MLflow for real: one tiny run with training.log_with [wandb, mlflow], W&B offline and MLflow in the
workspace's SQLite store, trained in a child process without network (its own network namespace where `unshare`
is allowed, and a Python audit hook that records every connection attempt). Metrics, evaluations, the config and
the sample grids are read back through each library's own reader and compared with the run store's."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.config import ConfigError
from pipelines.ecosystem import trackers
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]

# The child: refuse and record any connection that is not a local socket, then train.
CHILD = textwrap.dedent("""
    import json, socket, sys
    attempts = []

    def audit(event, args):
        if event == "socket.connect" and args[0].family != socket.AF_UNIX and args[1][0] not in ("127.0.0.1", "::1"):
            attempts.append(repr(args[1]))
        elif event == "socket.getaddrinfo" and args[0] not in ("localhost", "127.0.0.1", "::1", None):
            attempts.append(repr(args[0]))

    sys.addaudithook(audit)
    from pipelines.train.run import train
    from tests.conftest import tiny_config
    from tests.ecosystem.conftest import EVAL

    row = train(tiny_config(training={"epochs": 2, "log_with": ["wandb", "mlflow"]}, evaluation=EVAL), sys.argv[1],
                progress=False)
    print(json.dumps({"row": {k: row[k] for k in ("name", "folder", "status", "error")}, "attempts": attempts}))
""")


def can_unshare_network() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], check=False, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def offline_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true",
               WANDB_CONFIG_DIR=str(tmp / "wandb-config"), WANDB_CACHE_DIR=str(tmp / "wandb-cache"),
               WANDB_DATA_DIR=str(tmp / "wandb-data"), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return env


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """(workspace, run folder, store row, connection attempts, whether it ran in a namespace without network)."""
    tmp = tmp_path_factory.mktemp("real-trackers")
    ws, elsewhere = tmp / "ws", tmp / "cwd"
    elsewhere.mkdir()
    isolated = can_unshare_network()
    command = (["unshare", "--net"] if isolated else []) + [sys.executable, "-c", CHILD, str(ws)]
    # A generous deadline, not a timing: a run that waits on the network would hang here instead of finishing.
    done = subprocess.run(command, check=False, cwd=elsewhere, env=offline_env(tmp), capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["row"]["status"] == "completed", out["row"]["error"]
    assert not list(elsewhere.iterdir())  # nothing written where the run was started from
    return ws, Path(out["row"]["folder"]), out["row"], out["attempts"], isolated


def store_series(ws: Path, run: str, key: str) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in RunStore(ws).metrics(run, [key])]


def assert_same_series(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def final_evaluation(ws: Path, run: str) -> dict:
    [final] = RunStore(ws).evaluations(run, "final")
    return final


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return np.array_equal(np.asarray(x.convert("RGB")), np.asarray(y.convert("RGB")))


def wandb_records(run_dir: Path) -> list[dict]:
    """The records of an offline run's .wandb log, through wandb's own reader (`wandb leet inspect --json`)."""
    done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_no_network_is_needed_or_tried(real_run):
    _, folder, _, attempts, isolated = real_run
    assert attempts == []  # no connection and no name lookup from Python
    if not isolated:
        pytest.skip("unshare --net is not allowed here: the run was not cut off from the network")
    # wandb-core (a separate program) ran without any network interface: it never needed one.
    logs = "".join(p.read_text() for p in (folder / "trackers" / "wandb").rglob("debug-core.log"))
    assert "network is unreachable" not in logs.lower()


def test_wandb_offline_run_has_metrics_config_and_grids(real_run):
    ws, folder, row, _, _ = real_run
    [run_dir] = (folder / "trackers" / "wandb").glob("offline-run-*")
    [where] = [w for w in trackers.tracker_locations(RunStore(ws), row["name"]) if w.startswith("wandb:")]
    assert str(run_dir) in where and "wandb sync" in where
    records = wandb_records(run_dir)
    history = {r["history"]["step"]["num"]: r["history"]["item"] for r in records if r["type"] == "history"}
    loss = store_series(ws, row["name"], "loss")
    assert_same_series([(s, h["loss"]) for s, h in sorted(history.items()) if "loss" in h], loss)  # store's cadence
    fds = {s: h["eval/training/digits-cnn_train/fd"] for s, h in history.items()
           if "eval/training/digits-cnn_train/fd" in h}
    assert sorted(fds) == [5, 10]  # one per epoch
    # The final evaluation is of best/ (an earlier step, which W&B refuses): it goes to the last step, saying its own.
    final, last = final_evaluation(ws, row["name"]), max(history)
    assert history[last]["eval/final/digits-cnn_val/fd"] == pytest.approx(final["fd"])
    assert history[last]["eval/final/digits-cnn_val/step"] == final["step"]
    config = {}
    for r in records:
        if r["type"] == "config":
            config.update(r["config"]["update"])
    assert config["family"] == "ddpm" and config["data.image_size"] == 8 and config["training.learning_rate"] == 0.001
    assert "wandb" in config["training.log_with"]
    # The sample grids: the same pixels as the run's own samples/epoch_N.png.
    grids = {s: h["samples.filenames"] for s, h in history.items() if "samples.filenames" in h}
    assert sorted(grids) == [5, 10]
    for epoch, step in ((1, 5), (2, 10)):
        [name] = grids[step]
        assert same_pixels(run_dir / "files" / name, folder / "samples" / f"epoch_{epoch}.png")
    assert next(r for r in records if r["type"] == "exit")["exit"]["exit_code"] == 0  # finished


def test_mlflow_run_has_metrics_params_and_grids(real_run):
    from mlflow import MlflowClient

    ws, folder, row, _, _ = real_run
    uri = f"sqlite:///{ws.resolve() / 'mlflow.db'}"  # the workspace's own store, MLFLOW_TRACKING_URI being unset
    [where] = [w for w in trackers.tracker_locations(RunStore(ws), row["name"]) if w.startswith("mlflow:")]
    assert where.startswith(f"mlflow: {uri} (run ")
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("studio").experiment_id])
    assert run.info.run_name == row["name"] and run.info.status == "FINISHED"
    history = {key: [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key),
                                                     key=lambda m: m.step)]
               for key in ("loss", "eval/training/digits-cnn_train/fd", "eval/final/digits-cnn_val/fd")}
    assert_same_series(history["loss"], store_series(ws, row["name"], "loss"))
    assert [s for s, _ in history["eval/training/digits-cnn_train/fd"]] == [5, 10]
    final = final_evaluation(ws, row["name"])
    assert_same_series(history["eval/final/digits-cnn_val/fd"], [(final["step"], final["fd"])])
    assert {"lr", "images_per_s", "diversity", "epoch"} <= set(run.data.metrics)
    params = run.data.params
    assert params["family"] == "ddpm" and params["data.image_size"] == "8" and params["training.learning_rate"] == "0.001"
    # The grids, in the workspace (not wherever the run was started), with the run's own pixels.
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    assert art.is_relative_to(ws.resolve() / "mlartifacts")
    for epoch, step in ((1, 5), (2, 10)):
        [png] = art.glob(f"images/samples+step+{step}+*[0-9a-f].png")
        assert same_pixels(png, folder / "samples" / f"epoch_{epoch}.png")


def test_tracker_that_cannot_start_fails_the_run_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://tracking")  # refused by MLflow, no network involved
    with pytest.raises(ConfigError) as err:
        train(tiny_config(training={"log_with": ["mlflow"]}), tmp_path, progress=False)
    [(field, message)] = err.value.errors
    assert field == "training.log_with" and message.startswith("mlflow could not start: ")
    [run] = RunStore(tmp_path).list_runs()
    assert run["status"] == "failed" and "training.log_with: mlflow could not start" in run["error"]
    assert run["step"] == 0


def test_mlflow_without_a_local_store_is_a_config_error(monkeypatch):
    real = trackers.importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda m: None if m == "sqlalchemy" else real(m))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError) as err:
        trackers.check_trackers(tiny_config(training={"log_with": ["mlflow"]}))
    [(field, message)] = err.value.errors
    assert field == "training.log_with" and "pip install mlflow" in message and "MLFLOW_TRACKING_URI" in message
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # a server needs no local store
    trackers.check_trackers(tiny_config(training={"log_with": ["mlflow"]}))
