"""plots/loss.png: the run's loss (raw and smoothed) and learning rate, drawn with matplotlib.

A Figure with its own Agg canvas, never pyplot's global figure state; and one lock, because parts of matplotlib
shared by every figure are not thread-safe either (the mathtext parser of log-scale ticks raised ParseException
when two threads drew at once).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..metrics import smooth

DRAW_LOCK = threading.Lock()


def plot_run_metrics(rows: list[dict], path: str | Path, loss_name: str = "loss") -> Path | None:
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        series.setdefault(r["name"], []).append((r["step"], r["value"]))
    if loss_name not in series:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with DRAW_LOCK:
        draw(series, path, loss_name)
    return path


def draw(series: dict[str, list[tuple[int, float]]], path: Path, loss_name: str) -> None:
    fig = Figure(figsize=(10, 3.5))
    FigureCanvasAgg(fig)
    ax_loss, ax_lr = fig.subplots(1, 2)
    steps, values = map(np.array, zip(*series[loss_name]))
    ax_loss.plot(steps, values, alpha=0.3, label=loss_name)
    ax_loss.plot(steps, smooth(values), label=f"{loss_name} (smoothed)")
    if (values > 0).all():  # a GAN's generator loss can be negative
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    if "lr" in series:
        ax_lr.plot(*zip(*series["lr"]), color="tab:green")
        ax_lr.set_title("learning rate")
        ax_lr.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
