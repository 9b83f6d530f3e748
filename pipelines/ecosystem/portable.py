"""Runs as zips, to move between workspaces or machines.

A run's zip holds its config.yaml, log.txt, final/ and best/ (with their cards), the sample grids and plots,
`run.json` (the store's row) and the store's metrics, evaluations and artifacts as CSV. Importing checks every
entry and field before anything is written (imported.py: paths, links, the upload limits, types, finite numbers
and ranges, the config as its family's), unpacks into a hidden folder that is
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
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from ..archives import copy_member, unpack_limit
from ..store import RunStore
from .imported import (
    ARTIFACT_COLUMNS,
    EVALUATION_COLUMNS,
    MAX_BYTES,
    METRIC_COLUMNS,
    READ_ERRORS,
    RUN_FIELDS,
    Imported,
    PortableError,
    model_meta,
    read_run,
)

FOLDERS = ("final", "best", "samples", "plots")  # the run's model folders and pictures (checkpoint-<step>/ stay)
FILES = ("config.yaml", "log.txt")


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


def import_run(zip_path: str | Path, workspace: str | Path = "checkpoints") -> str:
    """Add the run in `zip_path` to `workspace` (folder and store); returns its name there (a suffix when the
    name is taken). Everything is checked first (imported.py); the folder is renamed into place when complete, and
    removed again if the store does not take the run."""
    workspace = Path(workspace).resolve()
    try:
        z = zipfile.ZipFile(zip_path)
        zip_size = Path(zip_path).stat().st_size
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise PortableError(f"{zip_path}: not a readable zip ({exc})") from None
    with z:
        imported = read_run(z, Path(zip_path).name, zip_size)
        size = sum(i.file_size for i in z.infolist())
        workspace.mkdir(parents=True, exist_ok=True)
        if size > shutil.disk_usage(workspace).free:
            raise PortableError(f"{zip_path} unpacks to {size / 1e9:.1f} GB, more than the free space in {workspace}")
        store = RunStore(workspace)
        name = store.unique_name(imported.base)
        folder = workspace / name
        tmp = workspace / f".import-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            unpack(z, tmp, Path(zip_path).name, unpack_limit(zip_size, MAX_BYTES))
            (tmp / "config.yaml").write_text(yaml.safe_dump({**imported.config, "name": name}, sort_keys=False))
            for sub in imported.studio_json:  # their studio.json names the run they belong to
                (tmp / sub / "studio.json").write_text(model_meta(imported, sub, name))
            os.rename(tmp, folder)  # fails rather than overwrite if the name was taken meanwhile
        except READ_ERRORS as exc:  # a member that does not decompress, a disk that fills up
            raise PortableError(f"{zip_path}: not unpacked ({type(exc).__name__}: {exc}); nothing was kept") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        record(store, name, folder, imported)
    except BaseException as exc:
        if store.exists(name):
            store.delete_run(name)
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, Exception):
            raise PortableError(f"the run could not be added to the store ({type(exc).__name__}: {exc}); "
                                "nothing was kept") from None
        raise
    return name


def unpack(z: zipfile.ZipFile, target: Path, zip_name: str, limit: int) -> None:
    """The zip's files under `target`, counting what is really written (a zip's directory can lie about sizes)."""
    written = 0
    for member in z.infolist():
        dest = target / PurePosixPath(member.filename.replace("\\", "/"))
        if member.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            written = copy_member(z, member, out, written, limit, zip_name, error=PortableError)


def record(store: RunStore, name: str, folder: Path, imported: Imported) -> None:
    """The imported run's row and history in the store."""
    row = imported.row
    store.create_run(name, row["family"], row["dataset"], row["resolution"],
                     yaml.safe_dump({**imported.config, "name": name}, sort_keys=False), str(folder), status=row["status"])
    fields = {k: row[k] for k in ("started_at", "ended_at", "step", "total_steps", "epoch", "best_metric", "best_value",
                                  "warning") if row[k] is not None}
    store.update_run(name, error=row["error"], **fields)
    store.import_history(name, metrics=imported.metrics, evaluations=imported.evaluations,
                         artifacts=[(kind, str(folder / path), step, at) for kind, path, step, at in imported.artifacts])
