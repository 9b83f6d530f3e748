"""Runs tab: the table of runs and, for the selected one, live charts, samples, log, config and actions."""
from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr

from pipelines.api import FAMILIES
from pipelines.store import RunStore

from .. import views
from . import run_actions, run_charts, share, sweeps

REFRESH_SECONDS = 2.0
MAX_CHARTS = 3  # the most charts of its own a family shows (Form.charts)
FD_LABEL = "FID / FD (lower is better)"


def build(studio) -> gr.Dropdown:
    store: RunStore = studio.manager.store
    timer = gr.Timer(REFRESH_SECONDS)
    # The picked run's progress sits right under the picker, where the person looks; the table of all runs below.
    with gr.Row():
        # None at first: the first refresh opens the page on the running (else newest) run
        run = RunPicker(_names(store), value=None, label="Run", info="Pick a run to watch it.", scale=3, elem_id="run-picker")
        actions = run_actions.buttons()  # only those that apply to the picked run show
    progress = gr.HTML(elem_id="run-progress")
    action = gr.Markdown(elem_id="run-action")
    stats = gr.Markdown(elem_id="run-stats")
    error = gr.Markdown(elem_id="run-error")
    table = gr.Dataframe(views.runs_table(store), label="Runs", interactive=False, elem_id="runs-table")
    # Per page, what was last sent to it: the run shown ("run"), the picker's choices ("choices"), its sample grids
    # and final model ("grids", "final") and the shape (series, mark) of each chart (the slot's key; see run_charts.py)
    drawn = gr.State({})
    opened = gr.State(False)  # per page: a run was shown (the page opens on one once; after a delete it stays empty)
    with gr.Row():
        smoothing = gr.Slider(0, 0.99, value=0.6, step=0.01, label="Smoothing", info="Exponential moving average of the loss.")
        with gr.Column():
            log_scale = gr.Checkbox(value=False, label="Log scale (loss axis)", elem_id="log-scale")
            log_note = gr.Markdown(elem_id="log-scale-note")
    with gr.Row():
        # No fixed height on plots with a legend: Gradio clips the legend of a fixed-height plot.
        loss = run_charts.slot("loss", "loss", "Loss", "loss-plot", log=True)
        fd = run_charts.slot("fd", "FD", FD_LABEL, "fd-plot", y_title="distance")
    with gr.Row():
        lr = run_charts.slot("lr", "lr", "Learning rate", "lr-plot")
        with gr.Column():
            final_eval = gr.Markdown(elem_id="final-evaluation")
            evaluations = gr.Dataframe(headers=views.EVALUATION_COLUMNS, label="Evaluations (newest first)", interactive=False,
                                       max_height=220, elem_id="evaluations-table")
    family_slots = []  # a family's own charts (Form.charts), filled and labelled on refresh; shown once they have data
    for i in range(MAX_CHARTS):
        suffix = f"-{i + 1}" if i else ""
        with gr.Row():
            family_slots.append(run_charts.slot(f"family{i}", "value", "chart", f"watch-plot{suffix}", placeholder=False,
                                                guide=True, show_label=True))
    slots = [loss, fd, lr, *family_slots]
    with gr.Row():
        sample = gr.Image(label="Latest samples", type="filepath", height=320, elem_id="latest-samples")
        with gr.Column():
            grid_pick = gr.Slider(1, 2, value=1, step=1, label="Sample grids saved so far", info="Slide to see how the samples evolved.",
                                  elem_id="grid-pick")
            grid = gr.Image(label="Sample grid", type="filepath", height=260)
    log = gr.Textbox(label="Log (last 15 lines)", lines=15, max_lines=15, autoscroll=True)
    with gr.Accordion("Config", open=False):
        config = gr.Code(language="yaml", label="config.yaml")
    with gr.Row():
        edits = gr.Code(value="training:\n  epochs: 80\n", language="yaml", label="Duplicate with these edits (YAML, same shape as the config)")
        with gr.Column():
            duplicate_btn = gr.Button("Duplicate with edits")
            download_btn = gr.DownloadButton("Download final model (.zip of final/)", visible=False)

    def run_view(name: str, smooth: float, log10: bool, shown: dict) -> tuple[dict, dict]:
        """Updates showing the run `name`, and the shapes its charts are drawn with (`shown`: those of the last view).
        The grid slider and its grid move to the newest grid only when one is added (or another run is picked): not
        under a person sliding back. Files go to the page only when they change: Gradio hashes every file it is sent."""
        row = store.get_run(name)
        ui = (FAMILIES.get(row["family"]) or next(iter(FAMILIES.values()))).form
        grids = views.sample_grid_steps(store, name)
        ips, rate = views.latest(store, name, "images_per_s"), views.latest(store, name, "lr")
        facts = [f"{ips:.0f} images/s" if ips else "", f"learning rate {rate:.3g}" if rate else "",
                 f"best {row['best_metric']} {row['best_value']:.4g}" if row["best_value"] is not None else "",
                 views.started_from(row)]
        final = Path(row["folder"]) / "final"
        if ui.fid:
            fd_chart, final_text, evaluation_rows = views.evaluation_views(store, name)
        else:
            fd_chart, final_text, evaluation_rows = None, views.family_summary(store, name, row["family"]), None
        loss_frame = views.metric_frame(store, name, list(ui.loss_metrics), "loss", smooth)
        plans = [(loss, loss_frame, {"log": log10}),
                 (fd, fd_chart, {"shown": ui.fid}),
                 (lr, views.metric_frame(store, name, list(ui.lr_metrics), "lr"), {})]
        for i, chart_slot in enumerate(family_slots):  # a chart shows once its metrics are logged (CLIP score: with a CLIP model)
            chart = ui.charts[i] if i < len(ui.charts) else None
            frame = views.metric_frame(store, name, list(chart.metrics), "value") if chart else None
            plans.append((chart_slot, frame, {"label": chart.title, "guide": chart.guide} if chart else {"shown": False}))
        updates, shapes = {}, {}
        for chart_slot, frame, how in plans:
            drawn_updates, shapes[chart_slot.key] = chart_slot.draw(frame, **how)
            updates.update(drawn_updates)
        updates.update({
            progress: views.progress_html(store, row),
            stats: " · ".join(f for f in facts if f),
            error: run_notice(row),
            final_eval: final_text,
            evaluations: gr.update(value=evaluation_rows, visible=ui.fid),
            log_note: views.log_scale_note(loss_frame, "loss") if log10 else "",
            **actions.shown(row["status"]),
            log: views.log_tail(row["folder"], lines=15),
            config: row["config"],
        })
        shapes["final"] = [name, final.stat().st_mtime if final.exists() else None]
        if shown.get("final") != shapes["final"]:  # (a whole model's zip, hashed again on every tick otherwise)
            updates[download_btn] = (gr.update(visible=True, value=str(final_zip(studio.workspace, name, final)))
                                     if final.exists() else gr.update(visible=False))
        shapes["grids"] = [name, len(grids)]
        if shown.get("grids") != shapes["grids"]:  # (and a run being deleted loses its files)
            updates.update({
                sample: gr.update(value=grids[-1].path, label=f"Latest samples · {grids[-1].caption}") if grids
                else gr.update(value=None, label="Latest samples"),
                grid_pick: gr.update(maximum=max(len(grids), 2), value=len(grids) or 1,  # a slider needs min < max
                                     label=views.grid_pick_label(grids, len(grids))),
                grid: gr.update(value=grids[-1].path, label=f"Sample grid · {grids[-1].caption}") if grids
                else gr.update(value=None, label="Sample grid")})
        return updates, shapes

    def no_run() -> dict:
        """The run's view with no run: empty, so that a deleted run's charts and log do not linger."""
        updates = {progress: "", stats: "", error: "", final_eval: "", evaluations: gr.update(value=None), sample: None,
                   grid: None, log: "", config: "", download_btn: gr.update(visible=False), drawn: {}, log_note: "",
                   **actions.shown(None)}
        for chart_slot in slots:
            updates.update(chart_slot.clear())
        return updates

    def refresh(name, smooth, log10, shapes_drawn, was_opened, picked=False):
        """Everything about the picked run; `picked`: the pick changed (to none: the view empties). Charts whose shape
        changes are hidden by a first update and drawn afresh by the second. A page that has shown no run yet opens
        on the running (else newest) one. The picker's choices are sent only when they change: each update redraws
        its open list, and a click on it could land on another run."""
        studio.manager.refresh()
        names, shown = _names(store), shapes_drawn or {}
        head = {table: views.runs_table(store)}
        if names != shown.get("choices"):
            head[run] = gr.update(choices=names)
        if not name and not was_opened and names:
            name = run_actions.default_run(store)
            head[run] = gr.update(choices=names, value=name)
        if name and name not in names:
            if picked or shown.get("run") == name:  # the run shown went: its value goes too
                yield {**head, run: gr.update(choices=names, value=None), action: f"Deleted {name}.", **no_run(),
                       drawn: {"choices": names}}
            else:  # a tick sent before the page moved on from a deleted run: its value is not the page's any more
                yield {**head, drawn: {**shown, "choices": names}}
            return
        if not name:
            yield {**head, **(no_run() if picked else {}), drawn: {**({} if picked else shown), "choices": names}}
            return
        try:
            updates, shapes = run_view(name, smooth, log10, shown)
        except (KeyError, OSError):  # its row or files went while they were read: a delete under way; the next tick says so
            if not _being_deleted(store, name):
                raise
            yield {}
            return
        hide_first = run_charts.redraws(slots, shown, shapes)
        if hide_first:
            yield hide_first
        yield {**head, **updates, drawn: {**shapes, "run": name, "choices": names}, opened: True}

    def refresh_picked(name, smooth, log10, shapes_drawn, was_opened):
        yield from refresh(name, smooth, log10, shapes_drawn, was_opened, picked=True)

    inputs = [run, smoothing, log_scale, drawn, opened]
    outputs = [table, run, action, progress, stats, error, final_eval, evaluations, sample, grid_pick, grid, log, config, download_btn,
               drawn, opened, log_note, *actions.components(), *[c for chart_slot in slots for c in chart_slot.components()]]
    timer.tick(refresh, inputs, outputs, api_visibility="private", show_progress="hidden")
    run.change(refresh_picked, inputs, outputs, api_visibility="private", show_progress="hidden")
    for trigger in (smoothing.release, log_scale.change):
        trigger(refresh, inputs, outputs, api_visibility="private", show_progress="hidden")

    def pick_grid(name, index):
        grids = views.sample_grid_steps(store, name) if name else []
        if not grids:
            return gr.update(value=None, label="Sample grid"), gr.update()
        chosen = min(int(index), len(grids))
        return (gr.update(value=grids[chosen - 1].path, label=f"Sample grid · {grids[chosen - 1].caption}"),
                gr.update(label=views.grid_pick_label(grids, chosen)))

    grid_pick.release(pick_grid, [run, grid_pick], [grid, grid_pick], api_visibility="private")

    def on_select(evt: gr.SelectData, frame):
        return frame.iloc[evt.index[0], 0], ""

    # A run picked by the person: the last action's message was about another run (or this one, earlier), so it goes.
    table.select(on_select, table, [run, action], api_visibility="private")
    run.input(lambda: "", None, action, api_visibility="private", show_progress="hidden", queue=False)

    run_actions.wire(studio, run, action, actions, edits, duplicate_btn)
    share.build(studio, run)
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


class RunPicker(gr.Dropdown):
    """The run dropdown, which lets through a run deleted a moment ago: a timer's tick sent before the page heard of
    the delete carries it, and Gradio would refuse it with an error toast (it checks values against the choices it
    last sent this page); `refresh` says the run was deleted instead. The page's own list stays strict."""
    is_template = True  # drawn by the page as the Dropdown it is

    def preprocess(self, payload):
        return payload  # a run's name or None, as the page sent it


def _being_deleted(store: RunStore, name: str) -> bool:
    """The run's row or folder is gone (a delete removes the folder, then the row)."""
    try:
        return not Path(store.get_run(name)["folder"]).is_dir()
    except KeyError:
        return True


def _names(store: RunStore) -> list[str]:
    return [r["name"] for r in store.list_runs()]
