"""What a run's zip holds, read and checked before anything is written: the zip limits of uploads (members, size,
compression ratio, paths), then every field of run.json (types, finite, ranges: see rows.py), the config (validated
as a config of its family), the history CSVs (numbers finite, steps whole and in range) and the model folders'
studio.json. A crafted zip gets one PortableError saying what is wrong, never a traceback or a half-written run."""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

from ..archives import ArchiveError, check_members, unpack_limit
from ..config import ConfigError, parse_yaml, validate_config
from ..rows import BIG, problem
from ..store import EVALUATION_FIELDS

RUN_FIELDS = ("name", "family", "dataset", "resolution", "status", "created_at", "started_at", "ended_at", "step",
              "total_steps", "epoch", "best_metric", "best_value", "error", "warning")
METRIC_COLUMNS = ("step", "epoch", "name", "value", "time")
EVALUATION_COLUMNS = (*EVALUATION_FIELDS, "time")
ARTIFACT_COLUMNS = ("kind", "path", "step", "time")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_MEMBERS = 20_000  # a run: its model folders, sample grids and plots
MAX_BYTES = 64 * 1024**3  # a large model's weights; the compression limits catch bombs long before
MODEL_FOLDERS = ("final", "best")
# What reading a crafted zip can raise besides our own checks: said as one PortableError.
READ_ERRORS = (ValueError, KeyError, TypeError, OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
               zlib.error, csv.Error, yaml.YAMLError)


class PortableError(ValueError):
    """A run that cannot be exported or a zip that cannot be imported; the message says why."""


@dataclass
class Imported:
    base: str  # the run's name, or a safe stand-in
    row: dict
    config: dict
    metrics: list[tuple] = field(default_factory=list)
    evaluations: list[tuple] = field(default_factory=list)
    artifacts: list[tuple] = field(default_factory=list)  # paths relative to the run folder
    studio_json: dict[str, dict] = field(default_factory=dict)  # final/ and best/: their studio.json


def read_run(z: zipfile.ZipFile, zip_name: str, zip_size: int) -> Imported:
    """Everything the zip says about its run, checked; raises PortableError."""
    try:
        check_members(zip_name, z.infolist(), unpack_limit(zip_size, MAX_BYTES), MAX_MEMBERS, error=PortableError)
    except ArchiveError as exc:
        raise PortableError(str(exc)) from None
    names = set(z.namelist())
    missing = [n for n in ("run.json", "config.yaml") if n not in names]
    if missing:
        raise PortableError(f"not a run exported by this studio: {', '.join(missing)} missing")
    try:
        return _read(z, names)
    except PortableError:
        raise
    except READ_ERRORS as exc:
        raise PortableError(f"{zip_name}: not a run this studio can import ({type(exc).__name__}: {exc})") from None


def _read(z: zipfile.ZipFile, names: set[str]) -> Imported:
    from .. import families  # noqa: F401  (registers the families' configs, which validate_config needs)

    row = json.loads(z.read("run.json"))
    if not isinstance(row, dict):
        raise PortableError("run.json: not a mapping of the run's fields")
    for key in ("name", "family", "dataset"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise PortableError(f"run.json: {key} is missing")
    row = {k: row.get(k) for k in RUN_FIELDS}
    if row["status"] not in ("completed", "failed", "stopped", "interrupted"):  # live when exported: interrupted here
        row["status"], row["error"] = "interrupted", row["error"] or f"imported while it was {str(row['status'])[:40]}"
    for key, value in row.items():
        if why := problem(key, value):
            raise PortableError(f"run.json: {why}")
    for key in ("resolution", "step", "total_steps", "epoch"):
        row[key] = int(row[key] or 0)
    name = row["name"]
    base = name[:90] if set(name) <= NAME_CHARS and name[0] not in ".-" else "imported"

    config = parse_yaml(z.read("config.yaml").decode())
    if not isinstance(config, dict):
        raise PortableError("config.yaml: not a mapping of sections")
    try:
        validate_config({**config, "name": base})
    except ConfigError as exc:
        raise PortableError(f"config.yaml: {exc}") from None
    if config.get("family") != row["family"]:
        raise PortableError(f"config.yaml is of the family {config.get('family')!r}, run.json of {row['family']!r}")

    imported = Imported(base, row, config)
    imported.metrics = [(whole(m, "step"), real(m, "epoch"), text(m, "name"), real(m, "value"), real(m, "time"))
                        for m in read_csv(z, names, "metrics.csv", METRIC_COLUMNS)]
    imported.evaluations = [tuple(
        (text(e, k, empty=True) or None) if k == "checkpoint" else text(e, k) if k in ("kind", "split", "extractor")
        else whole(e, k) if k in ("step", "num_samples", "num_real") else real(e, k)
        for k in EVALUATION_COLUMNS) for e in read_csv(z, names, "evaluations.csv", EVALUATION_COLUMNS)]
    for a in read_csv(z, names, "artifacts.csv", ARTIFACT_COLUMNS):
        path = PurePosixPath(text(a, "path"))
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise PortableError(f"artifacts.csv: the path {str(path)!r} points outside the run folder")
        imported.artifacts.append((text(a, "kind"), path, whole(a, "step"), real(a, "time")))
    for sub in MODEL_FOLDERS:
        if f"{sub}/studio.json" in names:
            meta = json.loads(z.read(f"{sub}/studio.json"))
            if not isinstance(meta, dict):
                raise PortableError(f"{sub}/studio.json: not a mapping")
            imported.studio_json[sub] = meta
    return imported


def read_csv(z: zipfile.ZipFile, names: set[str], name: str, columns: tuple[str, ...]) -> list[dict]:
    if name not in names:
        return []
    rows = list(csv.DictReader(io.StringIO(z.read(name).decode())))
    if rows and set(columns) - set(rows[0]):
        raise PortableError(f"{name}: columns {sorted(set(columns) - set(rows[0]))} missing")
    for index, row in enumerate(rows, 1):
        row["_where"] = f"{name} row {index}"
    return rows


def real(row: dict, key: str) -> float:
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or abs(value) > 1e300:
        raise PortableError(f"{row['_where']}: {key} is {row[key]!r}, not a finite number")
    return value


def whole(row: dict, key: str) -> int:
    value = real(row, key)
    if value != int(value) or not 0 <= value <= BIG:
        raise PortableError(f"{row['_where']}: {key} is {row[key]!r}, not a whole number from 0 to {BIG:,}")
    return int(value)


def text(row: dict, key: str, empty: bool = False) -> str:
    value = row[key]
    if not isinstance(value, str) or (not value and not empty) or len(value) > 1000:
        raise PortableError(f"{row['_where']}: {key} is {str(value)[:60]!r}, not a name")
    return value


def model_meta(imported: Imported, sub: str, name: str) -> str:
    """The model folder's studio.json, naming its new run."""
    return json.dumps({**imported.studio_json[sub], "run": name}, indent=2)
