"""Sweeps: a grid of runs over up to three config fields, queued as ordinary runs grouped under one name.

    parse_specs(["training.learning_rate=5e-5,1e-4", ...]) -> [Axis(key, values)]
    plan_sweep(base_config, axes, sample, seed)         -> [Planned(values, config)], every config validated;
                                                           ConfigError naming each refused field and value
    queue_sweep(store, plans, start, sweep_name)        -> (sweep name, run names): `start(config)` queues one run
    sweep_table(store, runs)                             -> Table: one row per run (swept values, status, metrics) and the best run
    sweep_curves(store, runs, metric, x)                 -> rows (x, value, run label) of one metric for an overlaid chart

Torch-free: the studio imports it while its page is served.
"""
from __future__ import annotations

import copy
import itertools
import math
import random
import re
from dataclasses import dataclass, field

from .config import ConfigError, RunConfig, parse_yaml, validate_config
from .data import dataset_slug
from .families import FAMILIES
from .metrics import metric_label
from .store import RunStore, run_seconds

MAX_FIELDS = 3
# Short names of often swept fields in run names and legends; others use the initials of their last part.
ABBREVIATIONS = {"training.learning_rate": "lr", "training.batch_size": "bs", "gan.g_steps": "gs",
                 "gan.d_learning_rate": "dlr", "training.epochs": "ep", "data.image_size": "px",
                 "training.ema_decay": "ema", "gan.loss": "", "diffusion.beta_schedule": "", "diffusion.prediction": ""}


@dataclass(frozen=True)
class Axis:
    key: str  # a dotted config path, e.g. training.learning_rate
    values: tuple


@dataclass(frozen=True)
class Planned:
    values: dict  # key -> value of this run
    config: RunConfig  # validated, named after its values
    base: str  # the name of a run of the base config; the sweep is named after it


def parse_spec(spec: str) -> Axis:
    """`key=v1,v2,v3` (values parsed as YAML scalars: 2e-4 is a number, true a boolean, cosine a string)."""
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", key):
        raise ConfigError([(spec, "a sweep looks like section.field=v1,v2,v3, e.g. training.learning_rate=5e-5,1e-4")])
    values = [_scalar(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError([(key, "give the sweep at least one value, e.g. training.batch_size=16,32")])
    if len(set(map(repr, values))) != len(values):
        raise ConfigError([(key, f"a value is listed twice: {text}")])
    return Axis(key, tuple(values))


def parse_specs(specs: list[str]) -> list[Axis]:
    axes = [parse_spec(s) for s in specs]
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError([("sweep", f"a field is swept twice: {', '.join(k for k in keys if keys.count(k) > 1)}")])
    if len(axes) > MAX_FIELDS:
        raise ConfigError([("sweep", f"at most {MAX_FIELDS} fields per sweep (got {len(axes)}: {', '.join(keys)})")])
    return axes


def _scalar(text: str):
    value = parse_yaml(text)
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d*\.?\d+e[-+]?\d+", text, re.IGNORECASE):
        return float(text)  # YAML 1.1 reads 2e-4 (no dot) as a string; a person means the number
    return value


def combinations(axes: list[Axis], sample: int | None = None, seed: int = 0) -> list[dict]:
    """Every combination of the axes' values (the first axis varies slowest), or `sample` of them drawn at random
    with `seed`, kept in grid order."""
    grid = [dict(zip([a.key for a in axes], values)) for values in itertools.product(*(a.values for a in axes))]
    if sample is not None and sample < 1:
        raise ConfigError([("sweep sample", f"at least 1 (got {sample})")])
    if sample is not None and sample < len(grid):
        picked = sorted(random.Random(seed).sample(range(len(grid)), sample))
        grid = [grid[i] for i in picked]
    return grid


def plan_sweep(base: RunConfig | dict, axes: list[Axis], sample: int | None = None, seed: int = 0) -> list[Planned]:
    """The configs of a sweep, all validated before anything is queued. Each value is first checked alone on the base
    config (so an error names the field and the value), then each combination; every error is collected."""
    if not axes:
        raise ConfigError([("sweep", "pick at least one field to sweep")])
    raw = base.model_dump(mode="json") if isinstance(base, RunConfig) else copy.deepcopy(base)
    errors: list[tuple[str, str]] = []
    for axis in axes:
        for value in axis.values:
            for field_, msg in _problems(raw, {axis.key: value}):
                msg = re.sub(r" \(got .*\)$", "", msg)  # the value is named first
                errors.append((axis.key, f"value {_show(value)}: {msg}" if field_ == axis.key else f"value {_show(value)}: {field_}: {msg}"))
    if errors:  # combinations of refused values would only repeat the same errors
        raise ConfigError(list(dict.fromkeys(errors)))
    base_name = raw.get("name") or default_name(validate_config(raw))
    plans = []
    for values in combinations(axes, sample, seed):
        problems = _problems(raw, values)
        if problems:
            which = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
            errors += [(f, f"{m} (with {which})") for f, m in problems]
            continue
        named = _with(raw, values)
        named["name"] = run_name(base_name, values)
        plans.append(Planned(values, validate_config(named), base_name))
    if errors:
        raise ConfigError(list(dict.fromkeys(errors)))
    return plans


def _with(raw: dict, values: dict) -> dict:
    out = copy.deepcopy(raw)
    for key, value in values.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([(key, f"{part} is not a section")])
        node[leaf] = value
    return out


def _problems(raw: dict, values: dict) -> list[tuple[str, str]]:
    try:
        validate_config(_with(raw, values))
    except ConfigError as exc:
        return exc.errors
    return []


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def default_name(config: RunConfig) -> str:
    """`<family>-<dataset>-<size>`, as a single run is named (see train.run.prepare_run)."""
    return f"{config.family}-{dataset_slug(config.data.dataset)}-{config.data.image_size}"


def short_key(key: str) -> str:
    if key in ABBREVIATIONS:
        return ABBREVIATIONS[key]
    return "".join(word[0] for word in key.split(".")[-1].split("_") if word)


def short_value(value) -> str:
    """2e-4 for 0.0002, 32 for 32, cosine for 'cosine': short and safe in a file name."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(short_value(v) for v in value)
    return re.sub(r"[^A-Za-z0-9.]+", "", str(value)) or "none"


def label(values: dict) -> str:
    """A run's values as a legend says them: lr=2e-4 bs=32."""
    return " ".join(f"{short_key(k) or k.split('.')[-1]}={short_value(v)}" for k, v in values.items())


def run_name(base: str, values: dict) -> str:
    """`base` with each value, e.g. gan-digits-16-lr2e-4-bs32 (at most 100 characters, as run names are)."""
    name = "-".join([base, *(f"{short_key(k)}{short_value(v)}" for k, v in values.items())])
    return re.sub(r"[^A-Za-z0-9_.-]", "", name)[:100].rstrip("-.")


def queue_sweep(store: RunStore, plans: list[Planned], start, sweep_name: str | None = None) -> tuple[str, list[str]]:
    """Queue each planned run with `start(config) -> run name` (the CLI prepares runs, the studio's RunManager
    queues them) under one sweep name (`<first run's base>-sweep`, -2... when taken)."""
    keys = list(plans[0].values)
    base = sweep_name or f"{plans[0].base}-sweep"
    name, n = base, 1
    while store.sweep_exists(name):
        n += 1
        name = f"{base}-{n}"
    store.create_sweep(name, keys)
    runs = []
    for plan in plans:
        run = start(plan.config)
        store.update_run(run, sweep=name)
        runs.append(run)
    return name, runs


# The table and the curves -----------------------------------------------------------------------------------

@dataclass
class Table:
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    best: str | None = None  # the run with the best metric
    metric: str = ""  # what "best" and "final" are ("FD (digits-cnn), lower is better")


def run_values(store: RunStore, name: str, keys: list[str]) -> dict:
    raw = parse_yaml(store.get_run(name)["config"]) or {}
    out = {}
    for key in keys:
        node = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[key] = node
    return out


def main_metric(store: RunStore, name: str) -> tuple[str, bool, list[tuple[int, float, float]]]:
    """(label, lower is better, [(step, value, time)]) of the metric that ranks a run's models: its FID/FD evaluations
    for generators, else the first of its family's chart metrics it logged (PSNR, prompt alignment, CLIP score: higher
    is better), else its loss (lower is better) when nothing was evaluated."""
    row = store.get_run(name)
    form = (FAMILIES.get(row["family"]) or next(iter(FAMILIES.values()))).form
    if form.fid:
        evals = [e for e in store.evaluations(name) if e["kind"] == "training"]
        if evals:
            return metric_label(evals[-1]["extractor"]), True, [(e["step"], e["fd"], e["time"]) for e in evals]
    else:
        for chart in form.charts:
            points = _points(store, name, chart.metrics[0])
            if points:
                return chart.metrics[0], False, points
    loss = form.loss_metrics[0]
    return loss, True, _points(store, name, loss)


def _points(store: RunStore, name: str, metric: str) -> list[tuple[int, float, float]]:
    return [(m["step"], m["value"], m["time"]) for m in store.metrics(name, [metric]) if m["value"] is not None]


def sweep_table(store: RunStore, runs: list[str], keys: list[str] | None = None) -> Table:
    """One row per run: its swept values (`keys`; by default the fields whose values differ among the runs), status,
    best metric and its step, final metric, images/s and duration; `best` names the best run."""
    runs = [r for r in runs if store.exists(r)]
    keys = keys if keys is not None else differing_keys(store, runs)
    table = Table(["best", "run", *keys, "status", "metric", "best value", "at step", "final value", "images/s", "minutes"])
    scored = []
    for name in runs:
        row = store.get_run(name)
        metric, lower, points = main_metric(store, name)
        best_step, best, _ = (min if lower else max)(points, key=lambda p: p[1]) if points else (None, None, None)
        speed = [m["value"] for m in store.metrics(name, ["images_per_s"]) if m["value"] is not None]
        seconds = run_seconds(row)  # across its resumes
        minutes = seconds / 60 if seconds is not None else None
        values = run_values(store, name, keys)
        table.rows.append(["", name, *(values[k] for k in keys), row["status"], metric, _round(best), best_step,
                           _round(points[-1][1]) if points else None, _round(sum(speed) / len(speed)) if speed else None,
                           _round(minutes)])
        if best is not None and math.isfinite(best):
            scored.append((best if lower else -best, metric, lower, name))
    metrics = {m for _, m, _, _ in scored}
    if len(metrics) == 1:  # runs ranked by different metrics (some evaluated, some not) are not compared
        _, metric, lower, table.best = min(scored)
        table.metric = f"{metric}, {'lower' if lower else 'higher'} is better"
        for row in table.rows:
            row[0] = "★" if row[1] == table.best else ""
    return table


def differing_keys(store: RunStore, runs: list[str]) -> list[str]:
    """The config fields (dotted paths, name aside) whose values differ among `runs`, at most six."""
    flat = [_flatten(parse_yaml(store.get_run(r)["config"]) or {}) for r in runs]
    keys = dict.fromkeys(k for f in flat for k in f if k != "name")
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1][:6]


def _flatten(raw: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_labels(store: RunStore, runs: list[str], keys: list[str] | None = None) -> dict[str, str]:
    """Legend labels: each run's swept values (lr=2e-4 bs=32), or its name when the values do not tell runs apart."""
    keys = keys if keys is not None else differing_keys(store, runs)
    labels = {r: label(run_values(store, r, keys)) for r in runs} if keys else {}
    if not labels or len(set(labels.values())) < len(runs):
        return {r: r for r in runs}
    return labels


def sweep_curves(store: RunStore, runs: list[str], metric: str, x: str = "step", labels: dict | None = None) -> list[dict]:
    """Points of one metric for several runs: {x: the step, or minutes since the run started; "value"; "run": its
    label}. `metric` is "main" (each run's main_metric) or "loss" (its family's first loss metric)."""
    labels = labels or {}
    points = []
    for name in runs:
        if not store.exists(name):
            continue
        row = store.get_run(name)
        if metric == "main":
            pairs = main_metric(store, name)[2]
        else:
            pairs = _points(store, name, (FAMILIES.get(row["family"]) or next(iter(FAMILIES.values()))).form.loss_metrics[0])
        start = row["started_at"] or row["created_at"]
        for step, value, at in pairs:
            points.append({x: step if x == "step" else round((at - start) / 60, 3), "value": value,
                           "run": labels.get(name, name)})
    return points


def _round(value):
    return None if value is None else float(f"{value:.4g}")
