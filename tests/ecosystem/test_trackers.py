"""Experiment trackers: a run with training.log_with writes the loss, evaluations and sample grids to TensorBoard
(read back from its event files), says where, and a missing tracker package is a config error naming it."""
import struct
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.config import ConfigError
from pipelines.ecosystem import trackers
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.conftest import tiny_config


def read_events(folder: Path) -> dict[str, list]:
    """tag -> [(step, value or "image")] from every TensorBoard event file under `folder` (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    tags: dict[str, list] = {}
    for path in folder.rglob("events.out.tfevents.*"):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            for v in event.summary.value:
                value = v.simple_value if v.HasField("simple_value") else "image" if v.HasField("image") else None
                tags.setdefault(v.tag, []).append((event.step, value))
    return tags


def test_tensorboard_gets_loss_evaluations_and_grids(tracked_run):
    ws, folder, row, _ = tracked_run
    tags = read_events(folder / "trackers")
    store = RunStore(ws)
    stored = [m for m in store.metrics(row["name"], ["loss"])]
    assert [s for s, _ in tags["loss"]] == [m["step"] for m in stored]  # the store's cadence
    assert [v for _, v in tags["loss"]] == pytest.approx([m["value"] for m in stored], rel=1e-5)
    assert {"lr", "images_per_s", "diversity"} <= set(tags)  # family metrics too
    fd = [t for t in tags if t.startswith("eval/training/digits-cnn_train/fd")]
    assert fd and len(tags[fd[0]]) == 2  # one per epoch, the extractor in the name
    assert "eval/final/digits-cnn_val/fd" in tags  # the final evaluation of best/
    assert [v for _, v in tags["samples"]] == ["image", "image"]
    [where] = trackers.tracker_locations(store, row["name"])
    assert where.startswith(f"tensorboard: {folder / 'trackers' / 'studio'}")
    assert "tracker tensorboard:" in (folder / "log.txt").read_text()


def test_missing_tracker_package_is_a_config_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(trackers.PACKAGES, "wandb", (("no_such_module_for_wandb",), "wandb"))
    with pytest.raises(ConfigError) as err:
        trackers.check_trackers(tiny_config(training={"log_with": ["wandb"]}))
    assert err.value.errors == [("training.log_with", "wandb is not installed: pip install wandb")]
    # From the command line: refused before a run is made.
    assert main(["train", "--workspace", str(tmp_path), "--set", "training.log_with=[wandb]", "--quiet"]) == 2
    assert "training.log_with: wandb is not installed: pip install wandb" in capsys.readouterr().err
    assert not RunStore(tmp_path).list_runs()
    # Through train() (the app's queue): the run fails before any step, saying which package.
    with pytest.raises(ConfigError):
        train(tiny_config(training={"log_with": ["wandb"]}), tmp_path, progress=False)
    [run] = RunStore(tmp_path).list_runs()
    assert run["status"] == "failed" and "pip install wandb" in run["error"] and run["step"] == 0
