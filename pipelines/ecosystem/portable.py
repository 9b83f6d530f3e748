"""Runs as zips, to move between workspaces or machines.

A run's zip holds its config.yaml, log.txt, final/ and best/ (with their cards), the sample grids and plots,
`run.json` (the store's row) and the store's metrics, evaluations and artifacts as CSV. Importing checks every
entry before anything is written (no absolute paths, no `..`, no links), unpacks into a hidden folder that is
renamed into place when complete, never overwrites a run (a taken name gets a suffix), and inserts the run and
its history into the workspace's store, so the Runs tab shows it with its charts. Nothing in a zip is executed:
JSON, CSV and YAML (safe loader) are read as data, and models load later through the usual safe loaders.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from ..config import parse_yaml
from ..store import EVALUATION_FIELDS, RunStore

FOLDERS = ("final", "best", "samples", "plots")  # the run's model folders and pictures (checkpoint-<step>/ stay)
FILES = ("config.yaml", "log.txt")
RUN_FIELDS = ("name", "family", "dataset", "resolution", "status", "created_at", "started_at", "ended_at", "step",
              "total_steps", "epoch", "best_metric", "best_value", "error", "warning")
METRIC_COLUMNS = ("step", "epoch", "name", "value", "time")
EVALUATION_COLUMNS = (*EVALUATION_FIELDS, "time")
ARTIFACT_COLUMNS = ("kind", "path", "step", "time")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class PortableError(ValueError):
    """A run that cannot be exported or a zip that cannot be imported; the message says why."""


def to_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def export_run(run_folder: str | Path, out: str | Path) -> Path:
    """Write the run in `run_folder` (its workspace is the folder above) to the zip `out`; returns its path."""
    folder = Path(run_folder).resolve()
    store = RunStore(folder.parent)
    if not (folder / "config.yaml").is_file() or not store.exists(folder.name):
        raise PortableError(f"{run_folder} is not a run of the workspace {folder.parent} (no config.yaml, or not in its store)")
    name = folder.name
    row = store.get_run(name)
    artifacts = []
    for a in store.artifacts(name):
        try:  # only pictures inside the run folder travel; trackers' addresses belong to this machine
            artifacts.append({**a, "path": Path(a["path"]).resolve().relative_to(folder).as_posix()})
        except ValueError:
            continue
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("run.json", json.dumps({k: row[k] for k in RUN_FIELDS}, indent=2))
            z.writestr("metrics.csv", to_csv(store.metrics(name), METRIC_COLUMNS))
            z.writestr("evaluations.csv", to_csv(store.evaluations(name), EVALUATION_COLUMNS))
            z.writestr("artifacts.csv", to_csv(artifacts, ARTIFACT_COLUMNS))
            for file in FILES:
                if (folder / file).is_file():
                    z.write(folder / file, file)
            for sub in FOLDERS:
                for path in sorted((folder / sub).rglob("*")) if (folder / sub).is_dir() else []:
                    hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)  # a killed write's temp
                    if path.is_file() and not path.is_symlink() and not hidden:
                        z.write(path, path.relative_to(folder).as_posix())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def check_entries(z: zipfile.ZipFile) -> None:
    """Refuse a zip with an entry that would land outside the run folder, or a link."""
    for info in z.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise PortableError(f"refused: the zip entry {name!r} points outside the run folder")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise PortableError(f"refused: the zip entry {name!r} is a symbolic link")
    names = set(z.namelist())
    missing = [n for n in ("run.json", "config.yaml") if n not in names]
    if missing:
        raise PortableError(f"not a run exported by this studio: {', '.join(missing)} missing")


def read_csv(z: zipfile.ZipFile, name: str, columns: tuple[str, ...]) -> list[dict]:
    if name not in z.namelist():
        return []
    rows = list(csv.DictReader(io.StringIO(z.read(name).decode())))
    if rows and set(columns) - set(rows[0]):
        raise PortableError(f"{name}: columns {sorted(set(columns) - set(rows[0]))} missing")
    return rows


def number(value: str, kind=float):
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise PortableError(f"not a number in the zip's CSV: {value!r}") from None


def import_run(zip_path: str | Path, workspace: str | Path = "checkpoints") -> str:
    """Add the run in `zip_path` to `workspace` (folder and store); returns its name there (a suffix when the
    name is taken)."""
    workspace = Path(workspace).resolve()
    store = RunStore(workspace)
    try:
        z = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PortableError(f"{zip_path}: not a readable zip ({exc})") from None
    with z:
        check_entries(z)
        size = sum(i.file_size for i in z.infolist())
        if size > shutil.disk_usage(workspace).free:
            raise PortableError(f"{zip_path} unpacks to {size / 1e9:.1f} GB, more than the free space in {workspace}")
        row = json.loads(z.read("run.json"))
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("name", "family", "dataset")):
            raise PortableError("run.json: name, family and dataset are missing")
        base = row["name"] if row["name"] and set(row["name"]) <= NAME_CHARS and row["name"][0] not in ".-" else "imported"
        config = parse_yaml(z.read("config.yaml").decode())
        if not isinstance(config, dict):
            raise PortableError("config.yaml: not a mapping of sections")
        metrics = read_csv(z, "metrics.csv", METRIC_COLUMNS)
        evaluations = read_csv(z, "evaluations.csv", EVALUATION_COLUMNS)
        artifacts = read_csv(z, "artifacts.csv", ARTIFACT_COLUMNS)
        name = store.unique_name(base)
        folder = workspace / name
        tmp = workspace / f".import-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            z.extractall(tmp)
            config["name"] = name
            (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            for sub in ("final", "best"):  # their studio.json names the run they belong to
                meta = tmp / sub / "studio.json"
                if meta.is_file():
                    data = json.loads(meta.read_text())
                    if isinstance(data, dict):
                        meta.write_text(json.dumps({**data, "run": name}, indent=2))
            os.rename(tmp, folder)  # fails rather than overwrite if the name was taken meanwhile
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    record(store, name, folder, row, config, metrics, evaluations, artifacts)
    return name


def record(store: RunStore, name: str, folder: Path, row: dict, config: dict, metrics, evaluations, artifacts) -> None:
    """The imported run's row and history in the store (a run that was live when exported is interrupted here)."""
    status, error = row.get("status"), row.get("error")
    if status not in ("completed", "failed", "stopped", "interrupted"):
        status, error = "interrupted", error or f"imported while it was {status}"
    store.create_run(name, row["family"], row["dataset"], int(number(row.get("resolution", 0), int)),
                     yaml.safe_dump(config, sort_keys=False), str(folder), status=status)
    fields = {k: row.get(k) for k in ("started_at", "ended_at", "step", "total_steps", "epoch", "best_metric", "best_value",
                                      "warning") if row.get(k) is not None}
    store.update_run(name, error=error, **fields)
    store.import_history(
        name,
        metrics=[(number(m["step"], int), number(m["epoch"]), m["name"], number(m["value"]), number(m["time"])) for m in metrics],
        evaluations=[tuple(None if k == "checkpoint" and not e[k] else number(e[k], int) if k in ("step", "num_samples", "num_real")
                           else e[k] if k in ("kind", "checkpoint", "split", "extractor") else number(e[k])
                           for k in EVALUATION_COLUMNS) for e in evaluations],
        artifacts=[(a["kind"], str(folder / PurePosixPath(a["path"])), number(a["step"], int), number(a["time"]))
                   for a in artifacts if ".." not in PurePosixPath(a["path"]).parts and not a["path"].startswith("/")],
    )
