"""Sweeps: parsing, naming, refusing bad values before anything is queued, and a 2 x 2 grid from the command line."""
import yaml

from pipelines.config import ConfigError
from pipelines.store import RunStore
from pipelines.sweep import combinations, parse_specs, plan_sweep, run_name, sweep_table
from tests.conftest import tiny_config
from tests.test_cli import run_cli

# FD of 16 samples with the cheap hog-colour features after each epoch: enough to rank four tiny runs.
TINY_EVAL = {"every_epochs": 1, "num_samples": 16, "steps": 2, "extractor": "hog-colour", "final": False}


def test_specs_parse_as_yaml_scalars_and_name_runs_shortly():
    axes = parse_specs(["training.learning_rate=5e-5, 2e-4", "training.batch_size=16,32", "model.class_conditional=true,false"])
    assert axes[0].values == (5e-5, 2e-4) and axes[1].values == (16, 32) and axes[2].values == (True, False)
    grid = combinations(axes)
    assert len(grid) == 8 and grid[0] == {"training.learning_rate": 5e-5, "training.batch_size": 16, "model.class_conditional": True}
    sample = combinations(axes, sample=3, seed=1)
    assert len(sample) == 3 and sample == combinations(axes, sample=3, seed=1) and all(s in grid for s in sample)
    assert run_name("gan-digits-16", {"training.learning_rate": 2e-4, "training.batch_size": 32}) == "gan-digits-16-lr2e-4-bs32"
    plans = plan_sweep(tiny_config(), axes[:2])
    assert [p.config.name for p in plans][:2] == ["ddpm-digits-8-lr5e-5-bs16", "ddpm-digits-8-lr5e-5-bs32"]


def test_a_bad_value_is_refused_naming_the_field_and_the_value(tmp_path):
    try:
        plan_sweep(tiny_config(), parse_specs(["training.batch_size=16,-3,0", "training.learning_rate=1e-4,fast"]))
    except ConfigError as exc:
        fields = [f for f, _ in exc.errors]
        text = str(exc)
    assert fields.count("training.batch_size") == 2 and "value -3" in text and "value 0" in text
    assert "training.learning_rate: value 'fast'" in text
    try:
        parse_specs(["training.a=1", "training.b=1", "training.c=1", "training.d=1"])
    except ConfigError as exc:
        assert "at most 3 fields" in str(exc)
    # From the command line: exit 2, the field named, and no run made.
    ws = tmp_path / "ws"
    done = run_cli("train", "--workspace", ws, "--sweep", "training.batch_size=16,-3", "--sweep", "training.epochs=1,2")
    assert done.returncode == 2 and "training.batch_size: value -3" in done.stderr and "nothing was queued" in done.stderr
    assert not (ws / "runs.sqlite").exists() or RunStore(ws).list_runs() == []


def test_a_two_by_two_sweep_from_the_command_line(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(training={"epochs": 1}, evaluation=TINY_EVAL).model_dump(mode="json")))
    ws = tmp_path / "ws"
    done = run_cli("train", "--config", config, "--workspace", ws, "--quiet",
                   "--sweep", "training.learning_rate=1e-3,3e-3", "--sweep", "training.batch_size=16,32")
    assert done.returncode == 0, done.stderr
    store = RunStore(ws)
    assert store.sweeps() == ["ddpm-digits-8-sweep"]
    runs = store.sweep_runs("ddpm-digits-8-sweep")
    assert runs == ["ddpm-digits-8-lr1e-3-bs16", "ddpm-digits-8-lr1e-3-bs32", "ddpm-digits-8-lr3e-3-bs16",
                    "ddpm-digits-8-lr3e-3-bs32"]
    for name in runs:
        row = store.get_run(name)
        assert row["status"] == "completed" and row["sweep"] == "ddpm-digits-8-sweep"
        cfg = yaml.safe_load(row["config"])["training"]
        assert name.endswith(f"-lr{cfg['learning_rate']:.0e}".replace("e-0", "e-") + f"-bs{cfg['batch_size']}")
    table = sweep_table(store, runs, store.sweep_keys("ddpm-digits-8-sweep"))
    assert table.columns[:4] == ["best", "run", "training.learning_rate", "training.batch_size"]
    by_run = {row[1]: dict(zip(table.columns, row)) for row in table.rows}
    assert by_run["ddpm-digits-8-lr3e-3-bs16"]["training.learning_rate"] == 3e-3
    assert all(r["metric"] == "FD (hog-colour)" and r["best value"] > 0 and r["final value"] > 0 and r["images/s"] > 0
               for r in by_run.values())
    best = min(by_run.values(), key=lambda r: r["best value"])["run"]
    assert table.best == best and by_run[best]["best"] == "★" and sum(r["best"] == "★" for r in by_run.values()) == 1
    assert f"best run: {best}" in done.stdout
    # A second sweep of the same grid: names taken get -2, and the sweep name too.
    done = run_cli("train", "--config", config, "--workspace", ws, "--quiet", "--set", "evaluation.every_epochs=0",
                   "--sweep", "training.learning_rate=1e-3", "--sweep", "training.batch_size=16")
    assert done.returncode == 0, done.stderr
    assert store.sweep_runs("ddpm-digits-8-sweep-2") == ["ddpm-digits-8-lr1e-3-bs16-2"]


def test_a_store_made_before_sweeps_gets_the_column(tmp_path):
    import sqlite3

    RunStore(tmp_path).create_run("old", "ddpm", "digits", 8, "family: ddpm\n", str(tmp_path / "old"))
    with sqlite3.connect(tmp_path / RunStore.FILENAME) as conn:  # as a store of an earlier version was
        conn.execute("ALTER TABLE runs DROP COLUMN sweep")
        conn.execute("DROP TABLE sweeps")
    store = RunStore(tmp_path)
    assert store.get_run("old")["sweep"] is None and store.sweeps() == []
    store.create_sweep("s", ["training.epochs"])
    store.update_run("old", sweep="s")
    assert store.sweeps() == ["s"] and store.sweep_runs("s") == ["old"] and store.sweep_keys("s") == ["training.epochs"]
