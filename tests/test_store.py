from pipelines.store import RunStore


def test_last_metrics_returns_the_newest_values_oldest_first(tmp_path):
    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 8, "", str(tmp_path / "r"))
    for step in range(1, 6):
        store.log_metrics("r", step, 0, {"loss": 1.0 / step, "lr": 0.1})
    assert [r["step"] for r in store.last_metrics("r", "loss", 2)] == [4, 5]
    assert store.last_metrics("r", "missing", 3) == []
