"""What the Runs tab draws and says, from the store: the sweep overlay of one-evaluation runs, the log axis, the grids'
epochs and steps, the run the tab opens on, and a resumed run's whole training time."""
import time

import pandas as pd
import yaml

from pipelines.api import sweep_curves, sweep_labels
from pipelines.store import RunStore, run_seconds, seconds_before_resume
from studio import charts, views
from studio.tabs.run_actions import APPLY, default_run
from tests.conftest import tiny_config

EVALUATION = {"epoch": 1.0, "kind": "training", "checkpoint": None, "split": "train", "extractor": "digits-cnn",
              "num_samples": 16, "num_real": 86, "kid": 0.1, "kid_std": 0.01, "seconds": 3.0}


def add_run(store, name, lr, folder, status="completed"):
    raw = {**tiny_config().model_dump(mode="json"), "name": name}
    raw["training"]["learning_rate"] = lr
    store.create_run(name, "ddpm", "digits", 8, yaml.safe_dump(raw), str(folder / name), status=status)


def test_a_sweep_of_one_evaluation_runs_draws_one_dot_per_run_on_numeric_sorted_axes(tmp_path):
    store = RunStore(tmp_path)
    for i, lr in enumerate([1e-3, 3e-3, 1e-2]):
        add_run(store, f"r{i}", lr, tmp_path)
        store.log_evaluation(f"r{i}", step=12 + i, fd=3.5384374876 + i, **EVALUATION)
    runs = ["r0", "r1", "r2"]
    frame = pd.DataFrame(sweep_curves(store, runs, "main", "step", sweep_labels(store, runs, None)),
                         columns=["step", "value", "run"])
    assert len(frame) == 3 and frame["step"].dtype.kind in "iuf"  # numbers, not labels
    spec = charts.line_spec(frame, "step", "value", "run", "step", "FD", points=True)
    assert [v["run"] for v in spec["data"]["values"]] == ["lr=1e-3", "lr=3e-3", "lr=0.01"]
    assert spec["encoding"]["x"]["type"] == spec["encoding"]["y"]["type"] == "quantitative"  # sorted, numeric ticks
    # the dots: a line of one point draws nothing
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "point"]
    assert spec["encoding"]["color"]["scale"]["domain"] == ["lr=1e-3", "lr=3e-3", "lr=0.01"]


def test_only_series_of_one_point_get_a_dot_and_a_lone_value_gets_room_around_it():
    frame = pd.DataFrame({"step": [5, 5, 10], "loss": [0.5, 0.4, 0.3], "series": ["a", "b", "b"]})
    spec = charts.line_spec(frame, "step", "loss", "series", "step", "loss")
    assert [v["alone"] for v in spec["data"]["values"]] == [True, False, False]
    assert spec["layer"][1]["transform"] == [{"filter": "datum.alone"}]
    many = charts.line_spec(frame[frame.series == "b"], "step", "loss", "series", "step", "loss")
    assert len(many["layer"]) == 1  # no empty layer (Vega would warn of infinite extents)
    lone = charts.line_spec(frame[frame.series == "a"], "step", "loss", "series", "step", "loss")
    assert lone["encoding"]["x"]["scale"]["domain"] == [4.0, 6.0]  # not a zero-width axis reading "5.000000"


def test_the_log_axis_plots_the_real_values_and_a_negative_loss_is_said_to_keep_it_linear():
    frame = pd.DataFrame({"step": [1, 2, 3], "loss": [1.0, 0.1, 0.01], "series": "raw"})
    spec = charts.line_spec(frame, "step", "loss", "series", "step", "loss (log scale)", log_y=True)
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    assert [v["loss"] for v in spec["data"]["values"]] == [1.0, 0.1, 0.01]  # the values, not their log10
    assert views.log_scale_note(frame, "loss") == ""
    gan = pd.DataFrame({"step": [1, 2, 3, 1, 2, 3], "loss": [0.7, 0.4, -0.35, 1.2, 1.1, 0.9],
                        "series": ["d_loss"] * 3 + ["g_loss"] * 3})
    assert views.log_scale_note(gan, "loss") == (
        "Shown on a linear scale: a log scale needs positive values, and d_loss reaches -0.35 (step 3).")


def test_every_grid_names_its_epoch_and_step(tmp_path):
    store = RunStore(tmp_path)
    add_run(store, "r", 1e-3, tmp_path)
    for epoch, step in ((2, 10), (4, 20)):
        path = tmp_path / "r" / "samples" / f"epoch_{epoch}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
        store.add_artifact("r", "samples", str(path), step)
    grids = views.sample_grid_steps(store, "r")
    assert [g.caption for g in grids] == ["epoch 2, step 10", "epoch 4, step 20"]
    assert views.grid_pick_label(grids, 1) == "Sample grid 1 of 2: epoch 2, step 10"
    assert views.sample_grids(store, "r") == [g.path for g in grids]


def test_the_tab_opens_on_the_running_run_else_the_newest(tmp_path):
    store = RunStore(tmp_path)
    assert default_run(store) is None
    add_run(store, "old", 1e-3, tmp_path)
    store.update_run("old", status="running")  # running, without a pid: no process to check
    add_run(store, "newer", 1e-3, tmp_path, status="queued")
    assert default_run(store) == "old"
    store.update_run("old", status="completed")
    assert default_run(store) == "newer"
    # The actions that apply: a completed run is continued (for some minutes), not resumed nor stopped.
    assert APPLY["completed"] == {"continue", "delete"} and APPLY["running"] == {"stop", "delete"}
    assert "resume" in APPLY["stopped"] and "stop" not in APPLY["stopped"]


def test_a_resumed_run_counts_the_time_it_trained_before_and_not_the_pause(tmp_path):
    store = RunStore(tmp_path)
    add_run(store, "r", 1e-3, tmp_path)
    now = time.time()
    store.update_run("r", started_at=now - 3600, ended_at=now - 3000)  # trained 10 minutes an hour ago
    row = store.get_run("r")
    assert seconds_before_resume(row) == 600 and run_seconds(row) == 600
    # resumed a minute ago
    store.update_run("r", status="running", started_at=now - 60, ended_at=None, earlier_seconds=600)
    assert 655 < run_seconds(store.get_run("r"), now=now + 0.1) < 665
    assert views.runs_table(store).iloc[0]["duration"] == "11m 00s"
