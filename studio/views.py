"""What the UI shows, computed from the run store and run folders only (no gradio here)."""
from __future__ import annotations

import functools
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipelines.api import (
    FAMILIES,
    families_of_kind,
    metric_label,
    run_checkpoints,
    smooth,
)
from pipelines.config import parse_yaml
from pipelines.store import RunStore, run_seconds

from .charts import colour_pair

RUN_COLUMNS = ["name", "family", "dataset", "resolution", "status", "progress", "best metric", "started", "duration"]


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def run_duration(row: dict) -> float | None:
    """The run's training time, across its resumes."""
    return run_seconds(row)


def runs_table(store: RunStore) -> pd.DataFrame:
    rows = []
    for r in store.list_runs():
        pct = 100 * progress_fraction(r)
        best = f"{r['best_metric']} {r['best_value']:.4g}" if r["best_metric"] and r["best_value"] is not None else ""
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started_at"])) if r["started_at"] else ""
        progress = r["phase"].split(":")[0] if r.get("phase") and r["status"] == "running" else f"{pct:.0f}%"
        rows.append([r["name"], r["family"], Path(r["dataset"]).name if "/" in r["dataset"] and Path(r["dataset"]).exists() else r["dataset"],
                     f"{r['resolution']}x{r['resolution']}", r["status"], progress, best, started, _duration(run_duration(r))])
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def metric_frame(store: RunStore, name: str, metrics: list[str], column: str, smoothing: float = 0.0) -> pd.DataFrame:
    """Logged metrics as one chart's rows: `column` holds the values, `series` says which metric (and whether
    smoothed) when the chart shows more than one line."""
    rows = store.metrics(name, metrics)
    frames, colours = [], {}
    for index, metric in enumerate(metrics):
        mine = [r for r in rows if r["name"] == metric]
        if not mine:
            continue
        steps = np.array([r["step"] for r in mine])
        values = np.array([r["value"] for r in mine], dtype=float)
        several = len(metrics) > 1
        raw = metric if several else "raw"
        dark, light = colour_pair(index)  # a metric's raw and smoothed curves: one colour, two shades
        frames.append(pd.DataFrame({"step": steps, column: values, "series": raw}))
        colours[raw] = light if smoothing > 0 else dark
        if smoothing > 0:
            smoothed = f"{metric + ' ' if several else ''}smoothed ({smoothing:g})"
            frames.append(pd.DataFrame({"step": steps, column: smooth(values, smoothing), "series": smoothed}))
            colours[smoothed] = dark
    if not frames:
        return pd.DataFrame({"step": [], column: [], "series": []})
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["colours"] = colours
    return frame


def log_scale_note(frame: pd.DataFrame, column: str) -> str:
    """Why a chart asked for on a log scale is drawn linear: a value at or below zero (a GAN's losses can be)."""
    if frame.empty or (frame[column] > 0).all():
        return ""
    low = frame.loc[frame[column].idxmin()]
    return (f"Shown on a linear scale: a log scale needs positive values, and {low['series']} reaches "
            f"{low[column]:.3g} (step {int(low['step'])}).")


EVALUATION_COLUMNS = ["step", "of", "vs real", "metric", "value", "KID", "samples", "seconds"]


def evaluation_views(store: RunStore, name: str) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """From one read of a run's evaluations: the FD chart (one series per extractor, sample count and split,
    named in the legend), the latest final evaluation as a sentence, and the table, newest first."""
    rows = store.evaluations(name)
    during = [r for r in rows if r["kind"] == "training"]
    chart = pd.DataFrame({"step": [r["step"] for r in during], "FD": [r["fd"] for r in during],
                          "series": [f"{metric_label(r['extractor'])}, {r['num_samples']} samples vs {r['split']}" for r in during]})
    newest_first = sorted(rows, key=lambda r: (r["time"], r["id"]), reverse=True)  # an evaluate run later may be of an older step
    final = next((r for r in newest_first if r["kind"] == "final"), None)
    run_row = store.get_run(name)
    asked = config_value(run_row["config"] or "", "evaluation", "final_num_samples")
    # Fewer than asked at the end of a run with a budget: the budget sized it (an evaluate command asks its own count).
    sized = f" (of {asked:,} asked: sized to fit the time budget)" if final and asked and final["num_samples"] < asked \
        and final["checkpoint"] == "best" and budget_minutes(run_row) else ""
    text = "" if final is None else (
        f"**Final evaluation** of {final['checkpoint']}/ (step {final['step']}) on the {final['split']} split: "
        f"{metric_label(final['extractor'])} **{final['fd']:.4g}** · KID {final['kid']:.3g} ± {final['kid_std']:.2g} · "
        f"{final['num_samples']:,} samples{sized} vs {final['num_real']:,} real images · {final['seconds']:.0f} s")
    table = pd.DataFrame([[r["step"], f"{r['checkpoint']}/" if r["kind"] == "final" else "training",
                           f"{r['split']} ({r['num_real']})", metric_label(r["extractor"]), f"{r['fd']:.4g}",
                           f"{r['kid']:.2g} ± {r['kid_std']:.1g}", r["num_samples"], f"{r['seconds']:.1f}"]
                          for r in newest_first], columns=EVALUATION_COLUMNS)
    return chart, text, table


def latest(store: RunStore, name: str, metric: str) -> float | None:
    rows = store.last_metrics(name, metric, 1)
    return rows[-1]["value"] if rows else None


def budget_minutes(row: dict) -> float | None:
    """The run's time budget (training.max_minutes), which covers the whole run, evaluations included."""
    return config_value(row.get("config") or "", "training", "max_minutes")


@functools.lru_cache(maxsize=512)  # the table asks for every run every few seconds: parse each config once
def config_value(config: str, section: str, key: str):
    try:
        return ((parse_yaml(config) or {}).get(section) or {}).get(key)
    except (yaml.YAMLError, AttributeError):  # a config edited by hand into something else: not shown
        return None


def started_from(row: dict) -> str:
    """What the run started from (its model.pretrained): the run it grew from, or the published model it fine-tunes."""
    source = config_value(row.get("config") or "", "model", "pretrained")
    if not source:
        return ""
    meta_file = Path(str(source)).expanduser() / "studio.json"  # a run's best/, final/ or checkpoint says whose it is
    try:
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    if meta.get("run"):
        size = f", {meta['image_size']} px" if meta.get("image_size") else ""
        return f"grew from run {meta['run']} ({Path(str(source)).name}/{size})"
    return f"fine-tunes {source}"


def progress_fraction(row: dict, now: float | None = None) -> float:
    """How far the run is towards what will end it: the time budget when it has one (the later of it and the steps),
    else its epochs; a phase that counts (preparing data) before training; a run that ended on its own is done."""
    if row["status"] == "completed":
        return 1.0
    steps = row["step"] / row["total_steps"] if row["total_steps"] else 0.0
    if row["status"] != "running":
        return steps
    minutes = budget_minutes(row)
    if row.get("budget_ends_at") and minutes:
        spent = 1 - (row["budget_ends_at"] - (now or time.time())) / (60 * minutes)
        return min(1.0, max(steps, spent))
    if row.get("phase_total"):  # a phase instead of training: preparing data, the final evaluation
        return row["phase_done"] / row["phase_total"]
    return steps


def time_left(store: RunStore, row: dict, now: float | None = None) -> float | None:
    """Seconds left: whichever ends first of the time budget and the steps at the pace of the last logged ones."""
    if row["status"] != "running":
        return None
    now = now or time.time()
    budget_left = max(0.0, row["budget_ends_at"] - now) if row.get("budget_ends_at") else None
    steps_left = None
    rows = store.last_metrics(row["name"], "lr", 20) if row["total_steps"] and not row.get("phase") else []  # every family logs its lr
    if len(rows) >= 2 and rows[-1]["time"] > rows[0]["time"]:
        rate = (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])
        steps_left = (row["total_steps"] - row["step"]) / rate if rate > 0 else None
    known = [t for t in (budget_left, steps_left) if t is not None]
    return min(known) if known else None


def end_text(row: dict) -> str:
    """Why a completed run ended, as the Runs tab says it ("ended: time budget (5 min)")."""
    reason = row.get("end_reason")
    if reason == "time budget":
        minutes = budget_minutes(row)
        return f"ended: time budget ({minutes:g} min)" if minutes else "ended: time budget"
    if reason == "epochs":
        return f"ended: all {row['epoch']} epochs done"
    return f"ended: {reason} (early stopping)" if reason and reason != "stop requested" else ""


def progress_html(store: RunStore, row: dict) -> str:
    steps = f"step {row['step']} of {row['total_steps']} · epoch {row['epoch']}"  # no separators: scripts read these
    parts = [row["status"]]
    if row["status"] == "completed" and end_text(row):
        parts.append(end_text(row))
    if row.get("phase") and row["status"] == "running":  # preparing data, evaluating, final evaluation
        parts += [steps, row["phase"]] if row["step"] else [row["phase"]]
    else:
        parts.append(steps)
    left = time_left(store, row)
    if left is not None:
        minutes = budget_minutes(row) if row.get("budget_ends_at") else None
        parts.append(f"about {_duration(left)} left" + (f" (time budget {minutes:g} min)" if minutes else ""))
    text = " · ".join(parts)
    colour = {"failed": "#d9534f", "interrupted": "#f0ad4e", "stopped": "#888", "completed": "#5cb85c"}.get(row["status"], "#3b82f6")
    pct = 100 * progress_fraction(row)
    return (f'<div class="run-progress" data-status="{row["status"]}" data-fraction="{pct / 100:.4f}" '
            f'style="border:1px solid #ccc;border-radius:6px;height:22px;position:relative;overflow:hidden">'
            f'<div style="width:{pct:.1f}%;height:100%;background:{colour}"></div>'
            f'<div style="position:absolute;top:2px;left:8px;font-size:13px">{html.escape(text)}</div></div>')


def sample_grids(store: RunStore, name: str) -> list[str]:
    return [grid.path for grid in sample_grid_steps(store, name)]


@dataclass
class SampleGrid:
    path: str
    step: int
    epoch: int | None  # from its name, samples/epoch_<n>.png

    @property
    def caption(self) -> str:
        return f"epoch {self.epoch}, step {self.step}" if self.epoch is not None else f"step {self.step}"


def sample_grid_steps(store: RunStore, name: str) -> list[SampleGrid]:
    """The run's sample grids on disk, oldest first, with the step and epoch each was drawn at."""
    grids = []
    for a in store.artifacts(name, "samples"):
        path = Path(a["path"])
        if path.exists():
            epoch = path.stem.removeprefix("epoch_")
            grids.append(SampleGrid(str(path), a["step"], int(epoch) if epoch.isdigit() else None))
    return grids


def grid_pick_label(grids: list[SampleGrid], index: int) -> str:
    """The grid slider's label: which grid it shows, of how many, drawn when."""
    if not grids:
        return "Sample grids saved so far"
    return f"Sample grid {index} of {len(grids)}: {grids[index - 1].caption}"


def log_tail(folder: str | Path, lines: int = 40) -> str:
    path = Path(folder) / "log.txt"
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 64 * 1024))
        return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])


GENERATORS = families_of_kind("images")  # the families whose checkpoints generate images (the Generate tab lists them)
ALL_GENERATORS = families_of_kind("images", "text")  # and from prompts (Compare, Interpolate, Chain)


def checkpoint_score(store: RunStore, meta: dict) -> str:
    """What the run measured at a checkpoint's step: FID/FD (diffusion, GAN) or alignment / CLIP score
    (text-to-image); "—" when nothing was measured there."""
    run, step = meta.get("run"), meta.get("step")
    if not run or step is None or not store.exists(run):
        return "—"
    # Training evaluations first: every checkpoint of a run is scored the same way there (final ones may differ).
    evaluations = sorted((e for e in store.evaluations(run) if e["step"] == step), key=lambda e: e["kind"] != "training")
    if evaluations:
        e = evaluations[0]
        return f"{metric_label(e['extractor'])} {e['fd']:.3g}"
    found = {r["name"]: r["value"] for r in store.metrics(run, ["align_seen", "clip_score"]) if r["step"] == step}
    if "align_seen" in found:
        return f"alignment {found['align_seen']:.0%}"
    return f"CLIP score {found['clip_score']:.1f}" if "clip_score" in found else "—"


def checkpoint_choices(store: RunStore, families: tuple[str, ...] = GENERATORS) -> list[tuple[str, str]]:
    """(label, path) of every checkpoint of the runs of `families`, newest run first; final and best before the rest."""
    choices = []
    for row in store.list_runs():
        if row["family"] not in families:
            continue
        found = run_checkpoints(row["folder"])
        order = {"final": 0, "best": 1, "checkpoint": 2}
        for info in sorted(found, key=lambda c: (order[c.kind], -c.step)):
            label = f"{row['name']} · {info.kind if info.kind != 'checkpoint' else info.path.name} (step {info.step})"
            choices.append((label, str(info.path)))
    return choices


def family_summary(store: RunStore, name: str, family: str) -> str:
    """The latest scores of a family without FID, in a sentence or two (the family says how)."""
    return FAMILIES[family].summary(store, name) if family in FAMILIES else ""
