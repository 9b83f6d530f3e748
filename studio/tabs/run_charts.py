"""The Runs tab's charts: each a LinePlot, with a line saying "no data yet" in its place while it has none.

Gradio's LinePlot builds its Vega spec (colour domain, legend, mark) when its settings change, possibly before the new
value has arrived, and afterwards only swaps the data. So a chart whose series or mark change (another run picked,
another smoothing, a second point) is hidden in one update and shown afresh in the next, which builds it from the new
value; and a chart with no data is hidden rather than emptied (an empty Vega view draws an -Infinity bar and warns of
infinite extents at every refresh).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr
import pandas as pd
from gradio.components.plot import AltairPlotData

from .. import charts

NO_RUN = "no run picked"


def vega(spec: dict) -> AltairPlotData:
    """A Vega-Lite spec as gr.Plot's value (drawn by the page's vega-embed; no altair needed on the server)."""
    return AltairPlotData(plot=json.dumps(spec), chart="line")


@dataclass
class Slot:
    key: str
    plot: gr.LinePlot
    x: str
    y: str
    label: str
    placeholder: gr.Markdown | None  # None: the chart (a family's own) is simply hidden while it has no data
    guide: gr.Markdown | None = None
    log_plot: gr.Plot | None = None  # the chart on a log y axis (a Vega-Lite spec: LinePlot has no log scale)

    def draw(self, frame: pd.DataFrame | None, label: str | None = None, shown: bool = True,
             guide: str | None = None, log: bool = False) -> tuple[dict, tuple | None]:
        """Updates that show `frame` (or say there is no data yet), and the shape they draw (None: hidden). `log`: on
        a log y axis, when the chart has one and every value is positive."""
        label = label or self.label
        if self.log_plot is not None:
            if log and shown and frame is not None and not frame.empty and (frame[self.y] > 0).all():
                spec = charts.line_spec(frame, self.x, self.y, "series", "step", f"{self.y} (log scale)",
                                        charts.series_colours(frame), log_y=True)
                updates = {self.plot: gr.update(visible=False), self.log_plot: gr.update(value=vega(spec), visible=True)}
                if self.placeholder is not None:
                    updates[self.placeholder] = gr.update(visible=False)
                return updates, ("log",)
            updates, shape = self.draw_lines(frame, label, shown, guide)
            return {**updates, self.log_plot: gr.update(visible=False)}, shape
        return self.draw_lines(frame, label, shown, guide)

    def draw_lines(self, frame: pd.DataFrame | None, label: str, shown: bool, guide: str | None) -> tuple[dict, tuple | None]:
        """The LinePlot's updates (see draw)."""
        settings = charts.plot_settings(frame, self.x, self.y, label)
        value, mark = settings.pop("value"), settings.pop("mark")
        if not shown or value is None:
            updates = {self.plot: gr.update(visible=False)}  # the value stays: changing it would redraw an empty view
            if self.placeholder is not None:
                updates[self.placeholder] = gr.update(value=f"**{label}** · {charts.NO_DATA}", visible=shown)
            if self.guide is not None:
                updates[self.guide] = gr.update(visible=False)
            return updates, None
        if mark != "line":  # the value carries the mark; Gradio's LinePlot always sends "line"
            value = self.plot.postprocess(value).model_copy(update={"mark": mark}).model_dump()
        updates = {self.plot: gr.update(value=value, visible=True, **settings)}
        if self.placeholder is not None:
            updates[self.placeholder] = gr.update(visible=False)
        if self.guide is not None:
            updates[self.guide] = gr.update(value=guide or "", visible=bool(guide))
        return updates, (tuple(settings["color_map"]), mark)

    def clear(self) -> dict:
        updates = {self.plot: gr.update(visible=False)}
        if self.log_plot is not None:
            updates[self.log_plot] = gr.update(visible=False)
        if self.placeholder is not None:
            updates[self.placeholder] = gr.update(value=f"**{self.label}** · {NO_RUN}", visible=True)
        if self.guide is not None:
            updates[self.guide] = gr.update(visible=False)
        return updates

    def components(self) -> list:
        return [c for c in (self.plot, self.placeholder, self.guide, self.log_plot) if c is not None]


def slot(key: str, y: str, label: str, elem_id: str, placeholder: bool = True, guide: bool = False, log: bool = False,
         **plot) -> Slot:
    """A chart in the current layout: the plot, the line that stands in for it, its guide (a family's charts) and, with
    `log`, the same chart on a log y axis."""
    with gr.Column():
        line_plot = gr.LinePlot(x="step", y=y, color="series", label=label, visible=False, elem_id=elem_id, **plot)
        log_plot = gr.Plot(label=label, visible=False, elem_id=elem_id.replace("plot", "log-plot")) if log else None
        stand_in = gr.Markdown(f"**{label}** · {NO_RUN}", elem_id=f"{elem_id}-empty") if placeholder else None
        help_text = gr.Markdown(visible=False, elem_id=elem_id.replace("plot", "guide")) if guide else None
    return Slot(key, line_plot, "step", y, label, stand_in, help_text, log_plot)


def redraws(slots: list[Slot], drawn: dict, shapes: dict) -> dict:
    """Hide-first updates for the charts shown before whose shape changed (empty when none did)."""
    return {s.plot: gr.update(visible=False) for s in slots
            if drawn.get(s.key) is not None and shapes.get(s.key) is not None and drawn[s.key] != shapes[s.key]}
