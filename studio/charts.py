"""How the Runs tab draws a chart of logged values: colours, axis limits and marks (no gradio here).

Gradio's LinePlot builds its Vega spec (colour domain, legend, mark) when its settings change and only swaps the
data on a new value, so the settings sent with every value must describe that value: the colour map names exactly
the series shown (another run's series rebuild the chart), and a single point or value gets limits of its own (a
zero-width axis reads "134.000000", and a line of one point draws nothing).
"""
from __future__ import annotations

import pandas as pd

# (dark, light) pairs: a metric's smoothed curve in the dark shade over its raw values in the light one.
PALETTE = [("#1f77b4", "#aec7e8"), ("#ff7f0e", "#ffbb78"), ("#2ca02c", "#98df8a"), ("#d62728", "#ff9896"),
           ("#9467bd", "#c5b0d5"), ("#8c564b", "#c49c94"), ("#e377c2", "#f7b6d2"), ("#17becf", "#9edae5")]
NO_DATA = "no data yet"
# Said under a chart drawn as points; also what makes Gradio rebuild the chart when the mark changes (its caption is
# one of the settings it watches, the mark is not).
ONE_VALUE = "One value so far: the line starts with the next one."


def colour_pair(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)]


def series_colours(frame: pd.DataFrame) -> dict[str, str]:
    """The colours a frame asks for (metric_frame sets them), else one dark colour a series in order of appearance."""
    chosen = frame.attrs.get("colours") or {}
    names = list(dict.fromkeys(frame["series"]))
    return {name: chosen.get(name) or colour_pair(i)[0] for i, name in enumerate(names)}


def padded(values: pd.Series, least: float = 0.0) -> list[float | None]:
    """Limits around a single value ([None, None]: the data's own extent; Gradio skips a None setting in an update, so
    limits set before would stay)."""
    distinct = values.dropna().unique()
    if len(distinct) != 1:
        return [None, None]
    v = float(distinct[0])
    pad = max(abs(v) * 0.1, least) or 1.0
    return [v - pad, v + pad]


def plot_settings(frame: pd.DataFrame | None, x: str, y: str, label: str) -> dict:
    """A LinePlot's value and the settings that go with it; `mark` "point" when no series has two points yet.
    An empty chart has no value (Vega would draw an -Infinity bar and warn of infinite extents) and says so."""
    if frame is None or frame.empty:
        return {"value": None, "label": f"{label} · {NO_DATA}", "color_map": {}, "x_lim": [None, None],
                "y_lim": [None, None], "caption": "", "mark": "line"}
    single = frame.groupby("series")[x].nunique().max() == 1
    return {"value": frame, "label": label, "color_map": series_colours(frame), "x_lim": padded(frame[x], least=1.0),
            "y_lim": padded(frame[y]), "caption": ONE_VALUE if single else "", "mark": "point" if single else "line"}
