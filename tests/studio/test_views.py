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
    assert "best/ (step 500) on the test split" in text and "FD (digits-cnn) **0.98**" in text and "2000 samples" in text
    # An evaluation of an older checkpoint made afterwards (python -m pipelines evaluate) is the newest one.
    store.log_evaluation("r", step=250, **{**row, "kind": "final", "checkpoint": "checkpoint-250", "split": "val",
                                           "fd": 1.7})
    _, text, table = views.evaluation_views(store, "r")
    assert "checkpoint-250/ (step 250) on the val split" in text and table.iloc[0]["of"] == "checkpoint-250/"


def test_a_run_preparing_its_data_says_so_before_step_0(tmp_path):
    import os

    store = RunStore(tmp_path)
    store.create_run("big", "ddpm", "/data/cats", 64, "", str(tmp_path / "big"))
    store.update_run("big", status="running", total_steps=1000, pid=os.getpid(),
                     phase="preparing data: 25,000 / 100,000 images, 850 images/s, about 2 min left")
    bar = views.progress_html(store, store.get_run("big"))
    assert "preparing data: 25,000 / 100,000 images, 850 images/s, about 2 min left" in bar and "width:25.0%" in bar
    assert views.runs_table(store).iloc[0]["progress"] == "preparing data"
    store.update_run("big", phase=None, step=10)
    assert "step 10 of 1000" in views.progress_html(store, store.get_run("big"))
