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


def line_spec(frame: pd.DataFrame, x: str, y: str, colour: str, x_title: str, y_title: str,
              colours: dict[str, str] | None = None, log_y: bool = False, points: bool = False, height: int = 260) -> dict:
    """A Vega-Lite spec (for gr.Plot) of one line per `colour` value over numeric, sorted axes. A series of one point
    is drawn as a dot (`points`: every point is), so that a sweep of one-evaluation runs shows one dot per run.
    `log_y`: a logarithmic y axis whose ticks are the real values (all of them must be positive).

    Gradio's LinePlot has no log scale and draws a one-point series as nothing, hence a spec of our own here."""
    frame = frame[[x, y, colour]].dropna()
    counts = frame.groupby(colour)[x].transform("count")
    values = [{x: float(a), y: float(b), colour: str(c), "alone": bool(n == 1)}
              for a, b, c, n in zip(frame[x], frame[y], frame[colour], counts)]
    domain = list(dict.fromkeys(str(c) for c in frame[colour]))
    colours = colours or {}
    scale = {"domain": domain, "range": [colours.get(name) or colour_pair(i)[0] for i, name in enumerate(domain)]}
    x_scale, y_scale = {"zero": False}, {"type": "log", "nice": False} if log_y else {"zero": False}
    if frame[x].nunique() == 1:  # a zero-width axis would read "29.000000": give it room
        x_scale["domain"] = padded(frame[x], least=1.0)
    if not log_y and frame[y].nunique() == 1:
        y_scale["domain"] = padded(frame[y])
    layers = [{"mark": {"type": "line", "clip": True}, "encoding": {}}]
    if points or any(v["alone"] for v in values):  # (an empty layer makes Vega warn of infinite extents)
        layers.append({"mark": {"type": "point", "filled": True, "size": 60, "strokeOpacity": 0, "clip": True},
                       "encoding": {}, **({} if points else {"transform": [{"filter": "datum.alone"}]})})
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "height": height,
        "padding": {"top": 26, "left": 4, "right": 4, "bottom": 4},  # room for the block's label over the chart
        "encoding": {
            "x": {"field": x, "type": "quantitative", "title": x_title, "scale": x_scale,
                  **({"axis": {"tickMinStep": 1, "format": "d"}} if x == "step" else {})},  # steps: whole ticks
            "y": {"field": y, "type": "quantitative", "title": y_title, "scale": y_scale},
            "color": {"field": colour, "type": "nominal", "title": None, "scale": scale, "legend": {"orient": "bottom"}},
            "tooltip": [{"field": colour, "type": "nominal"}, {"field": x, "type": "quantitative", "title": x_title},
                        {"field": y, "type": "quantitative", "title": y_title, "format": ".4g"}],
        },
        # Gradio themes a "line" chart's layers and recolours a layer's own colour encoding: the layers have an empty
        # one, and the colours are the chart's.
        "layer": layers,
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},  # SVG: the page (and tests) can read it
    }
