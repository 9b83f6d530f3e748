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
    with pytest.raises(PortableError, match="points outside the (run )?folder"):
        api.import_run(bad, ws)
    assert not (tmp_path / "escape.txt").exists() and not RunStore(ws).list_runs()
    assert all(p.name.startswith(RunStore.FILENAME) for p in ws.iterdir())  # the store only, no run folder


def crafted(exported, out, edits: dict[str, callable]):
    """A copy of the zip `exported` with members changed by `edits` (name -> function of its text)."""
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename in edits:
                data = edits[info.filename](data.decode()).encode()
            dst.writestr(info.filename, data)
    return out


def set_field(key, value):
    import json

    return lambda text: json.dumps({**json.loads(text), key: value}) if value != "NaN" else \
        json.dumps(json.loads(text))[:-1] + f', "{key}": NaN}}'


@pytest.mark.parametrize("member, edit, says", [
    ("run.json", set_field("step", "lots"), "run.json: step is 'lots', not a number"),
    ("run.json", set_field("step", 1e309), "run.json: step is inf, outside 0 .. 1e+12"),
    ("run.json", set_field("best_value", "NaN"), "run.json: best_value is nan, outside"),
    ("run.json", set_field("resolution", -8), "run.json: resolution is -8, outside 0 .. 65536"),
    ("run.json", set_field("ended_at", [1]), "run.json: ended_at is [1], not a number"),
    ("run.json", lambda text: text[:-3], "not a run this studio can import (JSONDecodeError"),
    ("config.yaml", lambda text: text.replace("max_minutes: null", "max_minutes: .inf"),
     "config.yaml: training.max_minutes: Input should be a finite number"),
    ("config.yaml", lambda text: text + "  - [unclosed\n", "not a run this studio can import (ParserError"),
    ("metrics.csv", lambda text: text.replace("\n1,", "\n1e309,", 1), "metrics.csv row 1: step is '1e309', not a finite"),
    ("metrics.csv", lambda text: text.replace("\n1,", "\nlots,", 1), "metrics.csv row 1: step is 'lots', not a finite"),
    ("evaluations.csv", lambda text: text.replace(",training,", ",,", 1), "evaluations.csv row 1: kind is '', not a name"),
    ("artifacts.csv", lambda text: text.replace("samples/", "../../", 1), "artifacts.csv: the path '../../"),
])
def test_a_crafted_run_zip_is_refused_naming_the_field_before_anything_is_written(tracked_run, tmp_path, member, edit,
                                                                                  says):
    """Probe: "step": "lots" in run.json was imported and the studio then would not start; 1e309 and nan left
    orphan folders or a 'completed' run without history; broken files gave raw tracebacks."""
    _, folder, _, _ = tracked_run
    exported = api.export_run(folder, tmp_path / "run.zip")
    bad = crafted(exported, tmp_path / "bad.zip", {member: edit})
    ws = tmp_path / "ws"
    with pytest.raises(PortableError) as refused:
        api.import_run(bad, ws)
    assert says in str(refused.value)
    assert not RunStore(ws).list_runs() and [p.name for p in ws.iterdir() if not p.name.startswith("runs.sqlite")] == []
    assert main(["import", str(bad), "--workspace", str(ws)]) == 2  # the command line says it in a line, no traceback


def test_a_run_zip_over_the_upload_limits_is_refused_before_anything_is_written(tracked_run, tmp_path):
    """Probe: a 1.4 MB zip unpacked to 1 GB, and one of 300,000 members was accepted."""
    _, folder, _, _ = tracked_run
    exported = api.export_run(folder, tmp_path / "run.zip")
    ws = tmp_path / "ws"
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(many, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for i in range(20_001):
            dst.writestr(f"samples/extra_{i}.txt", "")
    with pytest.raises(PortableError, match="holds 20,0.. files; the limit is 20,000"):
        api.import_run(many, ws)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("samples/zeros.png", bytes(200 * 1024**2))
    with pytest.raises(PortableError, match="looks like a zip bomb"):
        api.import_run(bomb, ws)
    assert not RunStore(ws).list_runs() and [p.name for p in ws.iterdir() if not p.name.startswith("runs.sqlite")] == []


def test_a_row_of_the_store_that_does_not_read_is_shown_unreadable_with_why(tmp_path):
    """Probe: one bad row (a step of "lots", written by hand or by an older import) kept the studio from starting."""
    import sqlite3

    store = RunStore(tmp_path)
    store.create_run("good", "ddpm", "digits", 8, "family: ddpm\n", str(tmp_path / "good"), status="completed")
    store.create_run("bad", "ddpm", "digits", 8, "family: ddpm\n", str(tmp_path / "bad"), status="running")
    with sqlite3.connect(tmp_path / RunStore.FILENAME) as conn:
        conn.execute("UPDATE runs SET step='lots', heartbeat_at='soon', best_value=9e999 WHERE name='bad'")
    fresh = RunStore(tmp_path)
    assert fresh.mark_interrupted(stale_seconds=0) == []  # the unreadable row is left as it is
    rows = {r["name"]: r for r in fresh.list_runs()}
    assert rows["good"]["status"] == "completed" and rows["good"]["error"] is None
    bad = rows["bad"]
    assert bad["status"] == "unreadable" and bad["step"] == 0 and bad["best_value"] is None
    assert "step is 'lots', not a number" in bad["error"] and "heartbeat_at is 'soon'" in bad["error"]
    assert "best_value is inf" in bad["error"] and fresh.get_run("bad")["status"] == "unreadable"
