"""Runs tab: the table of runs and, for the selected one, live charts, samples, log, config and actions."""
from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr

from pipelines.api import FAMILIES
from pipelines.store import RunStore

from .. import views
from . import sweeps

REFRESH_SECONDS = 2.0
MAX_CHARTS = 3  # the most charts of its own a family shows (Form.charts)


def build(studio) -> gr.Dropdown:
    store: RunStore = studio.manager.store
    timer = gr.Timer(REFRESH_SECONDS)
    table = gr.Dataframe(views.runs_table(store), label="Runs", interactive=False, elem_id="runs-table")
    with gr.Row():
        run = gr.Dropdown(_names(store), value=None, label="Run", info="Pick a run to watch it.", scale=3, elem_id="run-picker")
        stop_btn = gr.Button("Stop", elem_id="stop-run")
        resume_btn = gr.Button("Resume", elem_id="resume-run")
        delete_btn = gr.Button("Delete", variant="stop", elem_id="delete-run")
    action = gr.Markdown(elem_id="run-action")
    progress = gr.HTML(elem_id="run-progress")
    stats = gr.Markdown(elem_id="run-stats")
    error = gr.Markdown(elem_id="run-error")
    with gr.Row():
        smoothing = gr.Slider(0, 0.99, value=0.6, step=0.01, label="Smoothing", info="Exponential moving average of the loss.")
        log_scale = gr.Checkbox(value=True, label="Log scale (log10 of the loss, when it is positive)")
    with gr.Row():
        # No fixed height on plots with a legend: Gradio clips the legend of a fixed-height plot.
        loss_plot = gr.LinePlot(x="step", y="loss", color="series", label="Loss", elem_id="loss-plot")
        fd_plot = gr.LinePlot(x="step", y="FD", color="series", label="FID / FD (lower is better)", y_title="distance",
                              elem_id="fd-plot")
    with gr.Row():
        lr_plot = gr.LinePlot(x="step", y="lr", color="series", label="Learning rate")
        with gr.Column():
            final_eval = gr.Markdown(elem_id="final-evaluation")
            evaluations = gr.Dataframe(headers=views.EVALUATION_COLUMNS, label="Evaluations (newest first)", interactive=False,
                                       max_height=220, elem_id="evaluations-table")
    family_charts = []  # slots for a family's own charts (Form.charts), filled and labelled on refresh
    for i in range(MAX_CHARTS):
        suffix = f"-{i + 1}" if i else ""
        with gr.Row():
            family_charts += [gr.LinePlot(x="step", y="value", color="series", label="chart", show_label=True, visible=False,
                                          elem_id=f"watch-plot{suffix}"),
                              gr.Markdown(visible=False, elem_id=f"watch-guide{suffix}")]
    with gr.Row():
        sample = gr.Image(label="Latest samples", type="filepath", height=320, elem_id="latest-samples")
        with gr.Column():
            grid_pick = gr.Slider(1, 2, value=1, step=1, label="Sample grids saved so far", info="Slide to see how the samples evolved.")
            grid = gr.Image(label="Sample grid", type="filepath", height=260)
    log = gr.Textbox(label="Log (last 15 lines)", lines=15, max_lines=15, autoscroll=True)
    with gr.Accordion("Config", open=False):
        config = gr.Code(language="yaml", label="config.yaml")
    with gr.Row():
        edits = gr.Code(value="training:\n  epochs: 80\n", language="yaml", label="Duplicate with these edits (YAML, same shape as the config)")
        with gr.Column():
            duplicate_btn = gr.Button("Duplicate with edits")
            download_btn = gr.DownloadButton("Download final model (.zip)", visible=False)

    def refresh(name, smooth, log10):
        studio.manager.refresh()
        names = _names(store)
        out = [views.runs_table(store), gr.update(choices=names)]
        if not name or name not in names:
            return out + [gr.update()] * len(detail)
        row = store.get_run(name)
        ui = (FAMILIES.get(row["family"]) or next(iter(FAMILIES.values()))).form
        grids = views.sample_grids(store, name)
        ips, lr = views.latest(store, name, "images_per_s"), views.latest(store, name, "lr")
        facts = [f"**{row['status']}**", f"{ips:.0f} images/s" if ips else "", f"learning rate {lr:.3g}" if lr else "",
                 f"best {row['best_metric']} {row['best_value']:.4g}" if row["best_value"] is not None else ""]
        final = Path(row["folder"]) / "final"
        if ui.fid:
            fd_chart, final_text, evaluation_rows = views.evaluation_views(store, name)
        else:
            fd_chart, final_text, evaluation_rows = None, views.family_summary(store, name, row["family"]), None
        charts = []
        for i in range(MAX_CHARTS):  # a chart shows once its metrics are logged (CLIP score only with a CLIP model)
            chart = ui.charts[i] if i < len(ui.charts) else None
            frame = views.metric_frame(store, name, list(chart.metrics), "value") if chart else None
            shown = frame is not None and not frame.empty
            charts += [gr.update(value=frame, label=chart.title, visible=True) if shown else gr.update(value=None, visible=False),
                       gr.update(value=chart.guide, visible=bool(chart.guide)) if shown else gr.update(visible=False)]
        return out + [
            views.progress_html(store, row),
            " · ".join(f for f in facts if f),
            run_notice(row),
            views.metric_frame(store, name, list(ui.loss_metrics), "loss", smooth, log10),
            gr.update(value=fd_chart, visible=ui.fid),
            views.metric_frame(store, name, list(ui.lr_metrics), "lr"),
            final_text,
            gr.update(value=evaluation_rows, visible=ui.fid),
            *charts,
            grids[-1] if grids else None,
            gr.update(maximum=max(len(grids), 2), value=len(grids) or 1),  # a slider needs min < max
            grids[-1] if grids else None,
            views.log_tail(row["folder"], lines=15),
            row["config"],
            gr.update(visible=True, value=str(final_zip(studio.workspace, name, final))) if final.exists() else gr.update(visible=False),
        ]

    detail = [progress, stats, error, loss_plot, fd_plot, lr_plot, final_eval, evaluations, *family_charts, sample, grid_pick,
              grid, log, config, download_btn]
    inputs = [run, smoothing, log_scale]
    timer.tick(refresh, inputs, [table, run, *detail], api_visibility="private", show_progress="hidden")
    for trigger in (run.change, smoothing.release, log_scale.change):
        trigger(refresh, inputs, [table, run, *detail], api_visibility="private", show_progress="hidden")

    def pick_grid(name, index):
        grids = views.sample_grids(store, name) if name else []
        return grids[min(int(index), len(grids)) - 1] if grids else None

    grid_pick.release(pick_grid, [run, grid_pick], grid, api_visibility="private")

    def on_select(evt: gr.SelectData, frame):
        return frame.iloc[evt.index[0], 0]

    table.select(on_select, table, run, api_visibility="private")

    def act(fn):
        def handler(name):
            if not name:
                return "Pick a run first."
            try:
                return fn(name)
            except (KeyError, ValueError) as exc:
                return f"**{exc}**"
        return handler

    stop_btn.click(act(studio.manager.stop), run, action, api_visibility="private")
    resume_btn.click(act(studio.manager.resume), run, action, api_visibility="private")
    delete_btn.click(act(studio.manager.delete), run, action, api_visibility="private",
                     js="(name) => (name && confirm('Delete run ' + name + ' and all its files?')) ? name : ''")
    duplicate_btn.click(lambda name, text: act(lambda n: f"Queued **{studio.manager.duplicate(n, text)}**")(name),
                        [run, edits], action, api_visibility="private")
    sweeps.build(studio)
    return run


def run_notice(row: dict) -> str:
    """The error of a failed or interrupted run, and any warning (such as a possible mode collapse)."""
    notes = []
    if row["error"] and row["status"] in ("failed", "interrupted"):
        notes.append(f"**Error:** {row['error']}")
    if row.get("warning"):
        notes.append(f"⚠️ **Warning:** {row['warning']}")
    return "\n\n".join(notes)


def final_zip(workspace: Path, name: str, final: Path) -> Path:
    """The run's final/ as a zip, made once (again only if final/ changed): the button downloads its value."""
    out = workspace / "exports" / f"{name}_final.zip"
    if not out.exists() or out.stat().st_mtime < final.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.make_archive(str(out.with_suffix("")), "zip", final)
    return out


def _names(store: RunStore) -> list[str]:
    return [r["name"] for r in store.list_runs()]
