from pipelines.store import RunStore


def test_last_metrics_returns_the_newest_values_oldest_first(tmp_path):
    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 8, "", str(tmp_path / "r"))
    for step in range(1, 6):
        store.log_metrics("r", step, 0, {"loss": 1.0 / step, "lr": 0.1})
    assert [r["step"] for r in store.last_metrics("r", "loss", 2)] == [4, 5]
    assert store.last_metrics("r", "missing", 3) == []


def test_evaluations_are_recorded_and_dropped_after_a_resume_point(tmp_path):
    import pytest

    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 16, "", str(tmp_path / "r"))
    row = {"epoch": 1.0, "kind": "training", "checkpoint": None, "split": "train", "extractor": "digits-cnn",
           "num_samples": 500, "num_real": 1617, "fd": 1.5, "kid": 0.01, "kid_std": 0.002, "seconds": 12.0}
    store.log_evaluation("r", step=10, **row)
    store.log_evaluation("r", step=20, **{**row, "fd": 1.2})
    store.log_evaluation("r", step=20, **{**row, "kind": "final", "checkpoint": "best", "split": "test"})
    assert [e["fd"] for e in store.evaluations("r", "training")] == [1.5, 1.2]
    assert len(store.evaluations("r", "final")) == 1
    store.truncate_after("r", 10)
    assert [e["step"] for e in store.evaluations("r")] == [10]
    with pytest.raises(ValueError, match="evaluation needs"):
        store.log_evaluation("r", step=1, fd=1.0)
