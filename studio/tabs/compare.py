"""Compare tab: 2 to 8 checkpoints of any generating family side by side (the same seeds, prompt and sampler; one
labelled column each, at a common display size and at native size; a before/after slider for two; a metrics
table; the grid as a PNG), and one checkpoint's samplers and step counts side by side, each timed."""
from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from pipelines.api import (
    SAMPLERS,
    SampleRequest,
    compare,
    compare_samplers,
    comparison_grid,
    pil_images,
    upscale_for_display,
)

from .. import views
from ..choices import follow_family, follow_samplers, with_options
from ..exports import new_folder
from ..generation import reports_errors

COLUMNS = {"checkpoint": "checkpoint", "kind": "kind", "step": "step", "resolution": "resolution",
           "score": "score at that step", "seconds": "seconds"}  # a column's key -> the table's header


def run_compare(checkpoints: list[str], request: SampleRequest, store, out_dir: Path, progress=None) -> dict:
    """Sample every checkpoint (one loaded at a time) and write the grids; returns {"grid", "native_grid",
    "slider", "columns", "note"} (paths, a before/after pair when two were picked, a dict per checkpoint keyed as
    COLUMNS, a sentence)."""
    checkpoints = [c for c in checkpoints or [] if c]
    if not 2 <= len(checkpoints) <= 8:
        raise gr.Error(f"Pick 2 to 8 checkpoints to compare (picked {len(checkpoints)}).")
    start = time.perf_counter()
    on_column = (lambda done, total: progress(done / total, desc=f"checkpoint {done} of {total}")) if progress is not None else None
    try:
        columns = compare(checkpoints, request, on_column=on_column)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    scores = [views.checkpoint_score(store, c.meta) for c in columns]
    headers = [[c.label, f"step {c.meta.get('step', '?')}, {c.image_size}px",
                f"{c.seconds:.1f}s" if score == "—" else f"{score}, {c.seconds:.1f}s"] for c, score in zip(columns, scores)]
    display = max(128, *(c.image_size for c in columns))
    out_dir.mkdir(parents=True, exist_ok=True)
    grid, native = out_dir / "comparison.png", out_dir / "comparison-native.png"
    Image.fromarray(comparison_grid(columns, display, headers)).save(grid)
    Image.fromarray(comparison_grid(columns, None, headers)).save(native)
    slider = None
    if len(columns) == 2:  # the first image of each, at the common size
        slider = tuple(str(out_dir / f"slider-{i}.png") for i in range(2))
        for c, path in zip(columns, slider):
            Image.fromarray(upscale_for_display(c.images[:1], display)[0]).save(path)
    table = [dict(zip(COLUMNS, (c.label, c.meta.get("kind", ""), c.meta.get("step", ""), f"{c.image_size}px", score,
                                round(c.seconds, 2)))) for c, score in zip(columns, scores)]
    r = request
    note = (f"{len(columns)} checkpoints, {r.num} images each (seeds {r.seed}–{r.seed + r.num - 1}), "
            f"{r.sampler}, {r.steps} steps, in {time.perf_counter() - start:.1f}s; each loaded, sampled and released in turn.")
    return {"grid": str(grid), "native_grid": str(native), "slider": slider, "columns": table, "note": note,
            "display_html": columns_html(columns, headers, display), "native_html": columns_html(columns, headers, None)}


def columns_html(columns, headers: list[list[str]], display: int | None) -> str:
    """The columns as HTML: headers that wrap instead of being clipped (the full label and folder on hover), each
    image at `display` pixels (enlarged without smoothing) or, with None, at its native size."""
    cells = []
    for column, lines in zip(columns, headers):
        size = display or column.image_size
        images = "".join(f'<img src="{png_uri(img)}" width="{size}" height="{size}" alt="">'
                         for img in pil_images(column.images))
        title = html.escape(f"{column.label}\n{column.path}")
        head = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
        cells.append(f'<div class="compare-column" style="width:{max(size, 96)}px">'
                     f'<div class="compare-header" title="{title}">{head}</div>{images}</div>')
    return f'<div class="compare-columns">{"".join(cells)}</div>'


def png_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(t) for t in str(text).replace(",", " ").split()]
    except ValueError:
        raise gr.Error(f"Step counts: whole numbers separated by commas (got {text!r}).") from None
    if not steps or any(not 1 <= s <= 1000 for s in steps):
        raise gr.Error("Step counts: one or more numbers from 1 to 1000.")
    return steps


def run_sampler_comparison(checkpoint: str, samplers: list[str], steps_text: str, request: SampleRequest, out_dir: Path,
                           progress=None) -> tuple[str, list]:
    if not checkpoint:
        raise gr.Error("Pick a checkpoint.")
    if not samplers:
        raise gr.Error("Tick at least one sampler.")
    settings = [(s, n) for s in samplers for n in parse_steps(steps_text)]
    on_column = (lambda done, total: progress(done / total, desc=f"{done} of {total}")) if progress is not None else None
    try:
        columns = compare_samplers(checkpoint, settings, request, on_column=on_column)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "samplers.png"
    display = max(128, columns[0].image_size)
    Image.fromarray(comparison_grid(columns, display, [[c.label, f"{c.seconds:.2f}s"] for c in columns])).save(path)
    return str(path), [[s, n, round(c.seconds, 2)] for (s, n), c in zip(settings, columns)]


def build(studio) -> None:
    store = studio.manager.store
    with_samplers = with_options(views.ALL_GENERATORS, "sampler")  # the families whose samplers can be compared

    checkpoints = studio.lists.add(gr.Dropdown(
        [], multiselect=True, max_choices=8, allow_custom_value=True, label="Checkpoints to compare (2 to 8)",
        elem_id="compare-checkpoints", info="Any runs, epochs or resolutions: diffusion, GAN or text-to-image."),
        views.ALL_GENERATORS)
    with gr.Row():
        prompt = gr.Textbox(label="Prompt (for the text-to-image checkpoints)", scale=3, elem_id="compare-prompt",
                            placeholder="Describe the image, e.g. a red circle on a blue background")
        negative = gr.Textbox(label="Negative prompt", placeholder="Optional", scale=2)
    with gr.Row():
        sampler = gr.Dropdown(list(SAMPLERS), value="dpm++", label="Sampler")
        steps = gr.Slider(1, 200, value=20, step=1, label="Steps")
        seed = gr.Number(0, precision=0, label="Seed", info="Image i uses seed + i in every column.")
        num = gr.Slider(1, 8, value=4, step=1, label="Images per checkpoint")
        class_label = gr.Number(-1, precision=0, minimum=-1, label="Class (-1: all)")
        guidance = gr.Slider(1, 10, value=3, step=0.5, label="Guidance", info="Class- and text-conditional models.")
        truncation = gr.Slider(0, 3, value=0, step=0.1, label="Truncation (GAN)")
    with gr.Row(equal_height=True):
        go = gr.Button("Compare", variant="primary", elem_id="compare-run", scale=1)
        note = gr.Markdown(elem_id="compare-note", min_height=40)
    with gr.Row():
        grid = gr.HTML(label="At a common display size", show_label=True, container=True, scale=3, elem_id="compare-grid",
                       min_height=120)
        native = gr.HTML(label="At native size", show_label=True, container=True, scale=2, elem_id="compare-native",
                         min_height=120)
    slider = gr.ImageSlider(label="Before/after (the first image of each; two checkpoints)", type="filepath",
                            visible=False, elem_id="compare-slider")
    table = gr.Dataframe(headers=list(COLUMNS.values()), label="Checkpoints", interactive=False, wrap=True,
                         elem_id="compare-table")
    download = gr.File(label="Download the grids (PNG: at the common size, at native size)", file_count="multiple",
                       elem_id="compare-download")
    follow_family(checkpoints, views.ALL_GENERATORS, {
        "prompt": [prompt, negative], "sampler": [sampler], "steps": [steps], "class": [class_label],
        "guidance": [guidance], "truncation": [truncation]})
    follow_samplers(checkpoints, [sampler])

    with gr.Accordion("Samplers and step counts, one checkpoint", open=False):
        with gr.Row():
            one = studio.lists.add(gr.Dropdown([], label="Checkpoint", allow_custom_value=True, scale=3,
                                               elem_id="samplers-checkpoint"), with_samplers)
            samplers = gr.CheckboxGroup(list(SAMPLERS), value=["ddim", "dpm++"], label="Samplers", scale=3)
            step_counts = gr.Textbox("10, 20, 50", label="Step counts", scale=1, elem_id="samplers-steps")
        one_prompt = gr.Textbox(label="Prompt", placeholder="Describe the image, e.g. a red circle on a blue background",
                                elem_id="samplers-prompt")
        with gr.Row(equal_height=True):
            samplers_go = gr.Button("Compare samplers", scale=1, elem_id="samplers-run")
            samplers_note = gr.Markdown(elem_id="samplers-note", min_height=40)
        samplers_grid = gr.Image(label="Samplers side by side", type="filepath", elem_id="samplers-grid")
        samplers_table = gr.Dataframe(headers=["sampler", "steps", "seconds"], interactive=False)
    follow_family(one, with_samplers, {"prompt": [one_prompt]})
    follow_samplers(one, [samplers])

    @reports_errors(outputs=6, status=0)
    def on_compare(paths, p, neg, smp, n_steps, sd, n, cls, g, trunc, progress=gr.Progress()):
        asked = SampleRequest.of(prompt=p, negative_prompt=neg, sampler=smp, steps=n_steps, seed=sd, num=n, class_label=cls,
                                 guidance=g, truncation=trunc)
        result = run_compare(paths, asked, store, new_folder(studio.workspace, "compare"), progress)
        two = result["slider"] is not None
        return (result["note"], result["display_html"], result["native_html"],
                gr.update(value=result["slider"], visible=two), [list(c.values()) for c in result["columns"]],
                [result["grid"], result["native_grid"]])

    go.click(on_compare, [checkpoints, prompt, negative, sampler, steps, seed, num, class_label, guidance, truncation],
             [note, grid, native, slider, table, download], api_visibility="private", show_progress_on=grid)

    @reports_errors(outputs=3, status=0)
    def on_samplers(c, smp, st, p, sd, n, cls, g, progress=gr.Progress()):
        asked = SampleRequest.of(prompt=p, seed=sd, num=n, class_label=cls, guidance=g)
        path, rows = run_sampler_comparison(c, smp, st, asked, new_folder(studio.workspace, "samplers"), progress)
        return f"{len(rows)} settings, the same seeds.", path, rows

    samplers_go.click(on_samplers, [one, samplers, step_counts, one_prompt, seed, num, class_label, guidance],
                      [samplers_note, samplers_grid, samplers_table], api_visibility="private",
                      show_progress_on=samplers_grid)
