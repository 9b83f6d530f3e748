"""What the Runs tab shows about evaluations, from the run store."""
from pipelines.store import RunStore
from studio import views


def test_evaluations_are_charted_tabled_and_the_final_one_summarised(tmp_path):
    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 16, "", str(tmp_path / "r"))
    row = {"epoch": 10.0, "kind": "training", "checkpoint": None, "split": "train", "extractor": "digits-cnn",
           "num_samples": 500, "num_real": 1617, "fd": 0.86, "kid": 0.0158, "kid_std": 0.0025, "seconds": 12.5}
    store.log_evaluation("r", step=250, **row)
    store.log_evaluation("r", step=500, **{**row, "epoch": 20.0, "fd": 0.35})
    store.log_evaluation("r", step=500, **{**row, "epoch": 20.0, "kind": "final", "checkpoint": "best", "split": "test",
                                           "num_samples": 2000, "num_real": 90, "fd": 0.98, "seconds": 58.0})
    chart, text, table = views.evaluation_views(store, "r")
    assert chart["FD"].tolist() == [0.86, 0.35] and set(chart["series"]) == {"FD (digits-cnn), 500 samples vs train"}
    assert table.iloc[0]["of"] == "best/" and table.iloc[0]["vs real"] == "test (90)" and len(table) == 3
    assert table.iloc[-1]["of"] == "training" and table.iloc[-1]["seconds"] == "12.5"
    assert "best/ (step 500) on the test split" in text and "FD (digits-cnn) **0.98**" in text and "2,000 samples vs 90 real images" in text
    # An evaluation of an older checkpoint made afterwards (python -m pipelines evaluate) is the newest one.
    store.log_evaluation("r", step=250, **{**row, "kind": "final", "checkpoint": "checkpoint-250", "split": "val",
                                           "fd": 1.7})
    _, text, table = views.evaluation_views(store, "r")
    assert "checkpoint-250/ (step 250) on the val split" in text and table.iloc[0]["of"] == "checkpoint-250/"


def test_a_run_preparing_its_data_says_so_before_step_0(tmp_path):
    import os

    store = RunStore(tmp_path)
    store.create_run("big", "ddpm", "/data/cats", 64, "", str(tmp_path / "big"))
    store.update_run("big", status="running", total_steps=1000, pid=os.getpid())
    store.set_phase("big", "preparing data: 25,000 / 100,000 images, 850 images/s, about 2 min left", 25_000, 100_000)
    bar = views.progress_html(store, store.get_run("big"))
    assert "preparing data: 25,000 / 100,000 images, 850 images/s, about 2 min left" in bar and "width:25.0%" in bar
    assert views.runs_table(store).iloc[0]["progress"] == "preparing data"
    store.set_phase("big", None)
    store.update_run("big", step=10)
    assert "step 10 of 1000" in views.progress_html(store, store.get_run("big"))


def budget_config(minutes: float = 5, final_num_samples: int = 2000) -> str:
    return f"training:\n  max_minutes: {minutes}\nevaluation:\n  final_num_samples: {final_num_samples}\n"


def test_progress_follows_the_time_budget_and_a_run_ended_by_it_reads_so(tmp_path):
    import os
    import time

    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 16, budget_config(), str(tmp_path / "r"))
    # 1 minute into a 5-minute budget, 100 steps of 10,000: the budget ends the run, so the bar says 20%.
    now = time.time()
    store.update_run("r", status="running", pid=os.getpid(), step=100, total_steps=10_000, budget_ends_at=now + 240)
    row = store.get_run("r")
    assert round(views.progress_fraction(row, now), 2) == 0.2
    assert 230 < views.time_left(store, row, now) <= 240
    bar = views.progress_html(store, row)
    assert "about 4m 00s left (time budget 5 min)" in bar or "about 3m 59s left (time budget 5 min)" in bar
    # After training, the final evaluation is a phase of the run, its counts in the store, the bar still the budget's.
    store.set_phase("r", "final evaluation: 600 / 1,200 samples", 600, 1200)
    bar = views.progress_html(store, store.get_run("r"))
    assert "final evaluation: 600 / 1,200 samples" in bar and 'data-status="running"' in bar
    assert views.runs_table(store).iloc[0]["progress"] == "final evaluation"
    store.set_phase("r", None)
    store.update_run("r", status="completed", end_reason="time budget", epoch=3, ended_at=now + 240)
    bar = views.progress_html(store, store.get_run("r"))
    assert "completed · ended: time budget (5 min) · step 100 of 10000" in bar and "width:100.0%" in bar
    assert views.runs_table(store).iloc[0]["progress"] == "100%"
    store.update_run("r", end_reason="FD (digits-cnn) plateau")
    assert "ended: FD (digits-cnn) plateau (early stopping)" in views.progress_html(store, store.get_run("r"))
    store.update_run("r", status="stopped", end_reason="stop requested")
    assert "width:1.0%" in views.progress_html(store, store.get_run("r"))  # a stopped run is where its steps got to


def test_a_final_evaluation_sized_by_the_budget_says_so(tmp_path):
    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 16, budget_config(), str(tmp_path / "r"))
    store.log_evaluation("r", step=500, epoch=20.0, kind="final", checkpoint="best", split="test", extractor="digits-cnn",
                         num_samples=1200, num_real=90, fd=0.98, kid=0.01, kid_std=0.002, seconds=30.0)
    _, text, _ = views.evaluation_views(store, "r")
    assert "1,200 samples (of 2,000 asked: sized to fit the time budget) vs 90 real images" in text


def test_chart_frames_pair_raw_and_smoothed_colours_and_say_when_there_is_nothing(tmp_path):
    from studio import charts

    store = RunStore(tmp_path)
    store.create_run("gan", "gan", "digits", 16, "", str(tmp_path / "gan"))
    assert charts.plot_settings(views.metric_frame(store, "gan", ["d_loss"], "loss"), "step", "loss", "Loss") == {
        "value": None, "label": "Loss · no data yet", "color_map": {}, "x_lim": [None, None], "y_lim": [None, None],
        "caption": "", "mark": "line"}
    store.log_metrics("gan", 134, 1.0, {"d_loss": 0.5, "g_loss": 2.0})
    one = charts.plot_settings(views.metric_frame(store, "gan", ["d_loss", "g_loss"], "loss", 0.6), "step", "loss", "Loss")
    assert one["mark"] == "point" and one["caption"] == charts.ONE_VALUE and one["x_lim"] == [120.6, 147.4]
    store.log_metrics("gan", 135, 1.1, {"d_loss": 0.4, "g_loss": 2.0})
    frame = views.metric_frame(store, "gan", ["d_loss", "g_loss"], "loss", 0.6)
    two = charts.plot_settings(frame, "step", "loss", "Loss")
    (d_dark, d_light), (g_dark, g_light) = charts.colour_pair(0), charts.colour_pair(1)
    assert two["color_map"] == {"d_loss": d_light, "d_loss smoothed (0.6)": d_dark, "g_loss": g_light,
                                "g_loss smoothed (0.6)": g_dark}
    assert two["mark"] == "line" and two["caption"] == "" and two["x_lim"] == [None, None] and two["y_lim"] == [None, None]
    flat = charts.plot_settings(views.metric_frame(store, "gan", ["g_loss"], "loss"), "step", "loss", "Loss")
    assert flat["y_lim"] == [1.8, 2.2] and flat["color_map"] == {"raw": d_dark}  # one value twice: no "2.000000" axis


def test_a_list_refill_keeps_a_path_typed_while_it_was_on_its_way():
    """A refill answers the value the page had when it asked. An empty box with nothing to offer gets no value back,
    so an upscaler path typed meanwhile stays (the Chain tab's was cleared on a loaded machine)."""
    import gradio as gr

    from studio.choices import CheckpointList

    upscalers = CheckpointList(gr.Dropdown([], allow_custom_value=True), ("sr",), pick_newest=True)
    assert "value" not in upscalers.update(None, []) and "value" not in upscalers.update("", [])
    assert upscalers.update(None, [("sr · final", "/runs/sr/final")])["value"] == "/runs/sr/final"  # the newest
    assert upscalers.update("/runs/gone/final", [])["value"] is None  # a deleted checkpoint leaves the box
