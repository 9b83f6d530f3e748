"""Portable runs: export a run to a zip and import it into a fresh workspace, where the store shows it with its
metrics, evaluations and sample grids; unsafe zips are refused and an existing run is never overwritten."""
import zipfile

import pytest

from pipelines import api
from pipelines.cli import main
from pipelines.ecosystem.portable import PortableError
from pipelines.store import RunStore


def test_export_then_import_shows_the_run_with_its_history(tracked_run, tmp_path, capsys):
    ws, folder, row, _ = tracked_run
    out = tmp_path / "run.zip"
    assert main(["export", str(folder), "--out", str(out)]) == 0
    names = set(zipfile.ZipFile(out).namelist())
    assert {"config.yaml", "log.txt", "metrics.csv", "evaluations.csv", "final/README.md", "best/studio.json"} <= names
    assert not [n for n in names if n.startswith("checkpoint-")]
    fresh = tmp_path / "elsewhere"
    assert main(["import", str(out), "--workspace", str(fresh)]) == 0
    assert f"imported run {row['name']}" in capsys.readouterr().out
    source, target = RunStore(ws), RunStore(fresh)
    imported = target.get_run(row["name"])
    assert imported["status"] == "completed" and imported["step"] == row["step"] and imported["family"] == "ddpm"
    assert imported["best_metric"] == source.get_run(row["name"])["best_metric"]
    assert imported["folder"] == str((fresh / row["name"]).resolve())

    def history(store):
        metrics = [(m["step"], m["name"], m["value"]) for m in store.metrics(row["name"])]
        evaluations = [(e["kind"], e["checkpoint"], e["extractor"], e["num_samples"], e["fd"]) for e in store.evaluations(row["name"])]
        return metrics, evaluations

    assert history(target) == history(source) and history(target)[0]
    grids = target.artifacts(row["name"], "samples")
    assert len(grids) == 2 and all(g["path"].startswith(str(fresh.resolve())) for g in grids)
    model = api.load(fresh / row["name"] / "final")  # the model travelled too
    assert api.sample(model, api.SampleRequest(num=1, steps=2)).shape == (1, 8, 8, 1)
    # Again: a new name, and the first import is untouched.
    second = api.import_run(out, fresh)
    assert second == f"{row['name']}-2" and target.get_run(second)["config"].startswith("family: ddpm\nname: " + second)
    assert len(target.metrics(row["name"])) == len(source.metrics(row["name"]))


@pytest.mark.parametrize("entry", ["../escape.txt", "/abs/escape.txt", "final/../../escape.txt"])
def test_import_refuses_entries_outside_the_run(tmp_path, entry):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("run.json", '{"name": "x", "family": "ddpm", "dataset": "digits"}')
        z.writestr("config.yaml", "family: ddpm\n")
        z.writestr(entry, "boo")
    ws = tmp_path / "ws"
    with pytest.raises(PortableError, match="points outside the run folder"):
        api.import_run(bad, ws)
    assert not (tmp_path / "escape.txt").exists() and not RunStore(ws).list_runs()
    assert all(p.name.startswith(RunStore.FILENAME) for p in ws.iterdir())  # the store only, no run folder
