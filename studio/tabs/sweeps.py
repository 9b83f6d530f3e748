"""Runs tab, "Compare runs / sweeps": a sweep (or any runs) side by side: loss and main metric overlaid, one line
per run labelled with its swept values, the sweep table with the best run starred, and the runs' best checkpoints
sent to the Compare tab."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from pipelines.api import sweep_curves, sweep_labels, sweep_table

from .. import charts, views
from . import run_charts

REFRESH_SECONDS = 3.0
X_AXES = {"step": "step", "wall clock": "minutes"}  # the toggle's choice -> the column (sweep_curves' x)
MAX_COMPARED = 8  # what the Compare tab takes


def build(studio) -> None:
    store = studio.manager.store
    with gr.Accordion("Compare runs / sweeps", open=False) as accordion:
        gr.Markdown("Pick a sweep to select its runs, or pick runs yourself: their loss and main metric (FID/FD, PSNR, "
                    "prompt alignment or CLIP score) on one chart each, one line per run.")
        with gr.Row():
            # Custom values allowed: the choices are read when the accordion opens, and the API may name newer runs.
            sweep = gr.Dropdown(store.sweeps(), value=None, label="Sweep", scale=2, elem_id="sweep-picker",
                                allow_custom_value=True,
                                info="Selects the runs of a grid started with Start sweep or --sweep.")
            runs = gr.Dropdown(_names(store), value=[], multiselect=True, label="Runs", scale=4, elem_id="compare-runs",
                               allow_custom_value=True,
                               info="Any runs, in a sweep or not.")
            x_axis = gr.Radio(list(X_AXES), value="step", label="x axis", scale=1, elem_id="sweep-x-axis")
        # Vega-Lite specs of our own (run_charts.vega): a run with one evaluation is a dot, and the axes are numeric.
        with gr.Row():
            loss_plot = gr.Plot(label="Loss (lower is better)", elem_id="sweep-loss-plot", visible=False)
            metric_plot = gr.Plot(label="Main metric", elem_id="sweep-metric-plot", visible=False)
        summary = gr.Markdown(elem_id="sweep-summary")
        table = gr.Dataframe(label="Runs side by side (click a header to sort; ★ the best)", interactive=False,
                             elem_id="sweep-table")
        with gr.Row():
            gr.Button("Open the best checkpoints in the Compare tab", elem_id="sweep-to-compare", scale=1)
            paths = gr.Textbox(label="Their checkpoint folders (best run first)", lines=2, scale=3, elem_id="sweep-paths",
                               buttons=["copy"])
    timer = gr.Timer(REFRESH_SECONDS, active=False)  # polls only while the accordion is open

    def on_sweep(name):
        return gr.update(choices=_names(store), value=store.sweep_runs(name) if name else [])

    sweep.input(on_sweep, sweep, runs, api_visibility="private")

    def refresh(name, picked, axis):
        """The charts' data, the table, a summary and the checkpoints to compare (also the API's compare_runs)."""
        picked = [r for r in picked or [] if store.exists(r)]
        keys = store.sweep_keys(name) if name and set(picked) <= set(store.sweep_runs(name)) else None
        axis = axis if axis in X_AXES else "step"
        labels = sweep_labels(store, picked, keys)
        found = sweep_table(store, picked, keys)
        metric = found.metric or ("each run's own metric (they differ: not compared)" if found.rows else "metric")
        column = X_AXES[axis]
        x_title = "step" if column == "step" else "minutes since the run started"
        plots = [overlay(store, picked, "loss", column, labels, x_title, "loss"),
                 overlay(store, picked, "main", column, labels, x_title, metric)]
        return (*plots, summary_text(found, len(picked)), pd.DataFrame(found.rows, columns=found.columns),
                "\n".join(best_checkpoints(store, found)))

    outputs = [loss_plot, metric_plot, summary, table, paths]
    runs.change(refresh, [sweep, runs, x_axis], outputs, api_name="compare_runs", show_progress="hidden")
    for event in (x_axis.change, timer.tick):
        event(refresh, [sweep, runs, x_axis], outputs, api_visibility="private", show_progress="hidden")

    def on_open():
        return gr.Timer(active=True), gr.update(choices=store.sweeps()), gr.update(choices=_names(store))

    accordion.expand(on_open, None, [timer, sweep, runs], api_visibility="private")
    accordion.collapse(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
    # The button is connected to the Compare tab by connect_compare, once every tab is built


def connect_compare(demo: gr.Blocks, tabs: gr.Tabs, studio) -> None:
    """The button sends the listed checkpoints to the Compare tab's picker and opens the tab (found by their elem_ids,
    so that neither tab's module knows the other)."""
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    button, paths, picker = by_id["sweep-to-compare"], by_id["sweep-paths"], by_id["compare-checkpoints"]
    # The last comparison's results go: they were of other checkpoints than those now in the picker.
    results = [by_id[k] for k in ("compare-note", "compare-grid", "compare-native", "compare-slider", "compare-table",
                                  "compare-download")]

    def send(text):
        chosen = [p for p in (text or "").splitlines() if p.strip()][:MAX_COMPARED]
        if len(chosen) < 2:
            raise gr.Error("The runs need at least two saved checkpoints (best/ or final/) to compare.")
        # the picker's choices read again, so that the new checkpoints show by their labels (run · best (step N))
        choices = views.checkpoint_choices(studio.manager.store, views.ALL_GENERATORS)
        note = f"The sweep's {len(chosen)} best checkpoints are picked above: press **Compare**."
        return (gr.update(choices=choices, value=chosen), gr.Tabs(selected="compare"), note, "", "",
                gr.update(value=None, visible=False), None, None)

    button.click(send, paths, [picker, tabs, *results], api_visibility="private").then(
        None, None, None, js=SCROLL_TO_PICKER)


# The Compare tab opens where the page was scrolled to (the sweep table, far down): show its top, the picker.
SCROLL_TO_PICKER = "() => { document.querySelector('#compare-checkpoints')?.scrollIntoView({block: 'start'}); }"


def overlay(store, runs: list[str], metric: str, column: str, labels: dict, x_title: str, y_title: str):
    """One chart of `metric` ("loss" or "main"), one line per run (a dot for a run of one point); hidden while empty."""
    frame = pd.DataFrame(sweep_curves(store, runs, metric, column, labels), columns=[column, "value", "run"])
    if frame.empty:
        return gr.update(value=None, visible=False)
    spec = charts.line_spec(frame, column, "value", "run", x_title, y_title, points=metric == "main")
    return gr.update(value=run_charts.vega(spec), visible=True)


def summary_text(found, count: int) -> str:
    if not count:
        return "Pick a sweep or some runs."
    if not found.best:
        return f"{count} runs; none has a score to rank by yet."
    return f"{count} runs; best by {found.metric}: **{found.best}** ★"


def best_checkpoints(store, found) -> list[str]:
    """Each run's best/ (else final/) folder, the best run first."""
    order = sorted(found.rows, key=lambda row: row[1] != found.best)
    out = []
    for row in order:
        folder = Path(store.get_run(row[1])["folder"])
        chosen = next((folder / k for k in ("best", "final") if (folder / k).is_dir()), None)
        if chosen:
            out.append(str(chosen))
    return out


def _names(store) -> list[str]:
    return [r["name"] for r in store.list_runs(("name",))]
