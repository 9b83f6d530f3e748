"""Upscale tab: drop images, pick a super-resolution model (a trained run's checkpoint, or a dropped official
Real-ESRGAN or SwinIR .pth / .safetensors), upscale with tiling; a before/after slider, bicubic side by side, downloads."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from pipelines.api import (
    UpscaleError,
    bicubic,
    check_tiling,
    families_of_kind,
    load_upscaler,
    open_checked,
    upscale_image,
)

from ..exports import new_folder
from ..generation import reports_errors


@dataclass
class Upscaled:
    name: str
    source: str  # the input as dropped
    bicubic: str  # PNG at the output size, for the slider and the side-by-side view
    output: str
    seconds: float


def require_inputs(files: list[str], model_path: str) -> None:
    if not model_path:
        raise gr.Error("Pick a trained super-resolution model, or drop a .pth / .safetensors model file.")
    if not files:
        raise gr.Error("Drop one or more images first.")


def run_upscale(files: list[str], model_path: str, outscale: float, tile: int, tile_pad: int, out_dir: Path,
                progress=None) -> tuple[list[Upscaled], list[tuple[str, str]], str]:
    """Upscale every usable file; the others are listed with the reason. Returns (results, failures, model label)."""
    require_inputs(files, model_path)
    try:
        check_tiling(tile, tile_pad, outscale=outscale)  # before the model is loaded
        upscaler = load_upscaler(model_path)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    scale = float(outscale) or upscaler.scale
    out_dir.mkdir(parents=True, exist_ok=True)
    results, failures, used = [], [], set()
    for n, file in enumerate(files):
        name = Path(file).name
        try:
            img = open_checked(file, scale)
            start = time.perf_counter()
            on_tile = (lambda done, total, n=n: progress((n + done / total) / len(files), desc=f"{name}: tile {done} of {total}")) \
                if progress is not None else None
            result = upscale_image(upscaler, img, scale, int(tile), int(tile_pad), progress=on_tile)
            seconds = time.perf_counter() - start
        except UpscaleError as exc:
            failures.append((name, str(exc)))
            continue
        except (RuntimeError, ValueError, OSError) as exc:  # e.g. an image too small for the model's padding
            failures.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            continue
        stem = Path(name).stem
        while stem in used:  # two dropped files of the same name keep both results
            stem += "_"
        used.add(stem)
        output, before = out_dir / "upscaled" / f"{stem}.png", out_dir / "bicubic" / f"{stem}.png"
        output.parent.mkdir(exist_ok=True)
        before.parent.mkdir(exist_ok=True)
        result.save(output)
        bicubic(img, scale).save(before)
        results.append(Upscaled(name, file, str(before), str(output), seconds))
    return results, failures, upscaler.label


def summary(results: list[Upscaled], failures: list[tuple[str, str]], label: str) -> str:
    lines = [f"**{len(results)} upscaled** with {label}" + (f", **{len(failures)} skipped**" if failures else "") + "."]
    for r in results:
        w, h = Image.open(r.output).size
        lines.append(f"- `{r.name}` → {w} x {h} in {r.seconds:.1f} s")
    lines += [f"- ⚠️ `{name}`: {reason}" for name, reason in failures]
    return "\n".join(lines)


def build(studio) -> gr.File:
    """Returns the images input, which other tabs send images to."""
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(label="Images to upscale: drop one or many", file_count="multiple", elem_id="upscale-files")
        with gr.Column(scale=2):
            model = studio.lists.add(gr.Dropdown(
                [], label="Model", allow_custom_value=True, elem_id="upscale-model",
                info="A trained super-resolution run (final/, best/ or a checkpoint), newest first, or a model file path."),
                families_of_kind("upscaler"))
            model_file = gr.File(label="…or drop a model file (.pth / .safetensors, e.g. an official Real-ESRGAN or SwinIR one)",
                                 file_types=[".pth", ".safetensors"], elem_id="upscale-model-file")
            with gr.Row():
                outscale = gr.Number(0, label="Output scale", minimum=0, maximum=16, info="0: the model's own scale.")
                tile = gr.Number(256, label="Tile size", minimum=0, precision=0, info="Input pixels per tile (0: whole image).")
                tile_pad = gr.Number(16, label="Tile padding", minimum=0, precision=0, info="Context around each tile.")
            go = gr.Button("Upscale", variant="primary", elem_id="upscale-run")
            # Under the button, where the person is looking: the tile-by-tile progress shows here.
            status = gr.Markdown("Progress and results show here.", elem_id="upscale-status", container=True,
                                 min_height=90)
    with gr.Row():
        shown = gr.Dropdown([], label="Showing", info="Which result the views below show.", elem_id="upscale-shown", scale=2)
        download = gr.File(label="Download (one PNG, or a zip of all)", elem_id="upscale-download", scale=3)
    slider = gr.ImageSlider(label="Before (bicubic) · after (model): drag the handle", type="filepath", elem_id="upscale-slider")
    side = gr.Gallery(label="Side by side: input · bicubic · model", columns=3, height=420, object_fit="contain",
                      elem_id="upscale-side")
    results_state = gr.State([])

    def views_of(results: list[Upscaled], name: str):
        r = next((r for r in results if r.name == name), results[0] if results else None)
        if r is None:
            return None, []
        return (r.bicubic, r.output), [(r.source, "input"), (r.bicubic, "bicubic"), (r.output, "model")]

    @reports_errors(outputs=6, status=0)
    def on_upscale(paths, picked, dropped, scale, tile_size, pad, progress=gr.Progress()):
        model_path = dropped or picked
        require_inputs(paths, model_path)  # before any folder is made
        out_dir = new_folder(studio.workspace, "upscale")
        results, failures, label = run_upscale(paths or [], model_path, scale or 0, tile_size or 0, pad or 0, out_dir, progress)
        if not results:
            return summary(results, failures, label), [], gr.update(choices=[], value=None), None, None, []
        if len(results) == 1:
            download_path = results[0].output
        else:
            download_path = shutil.make_archive(str(out_dir / "upscaled"), "zip", out_dir / "upscaled")
        before_after, gallery = views_of(results, results[0].name)
        names = [r.name for r in results]
        return (summary(results, failures, label), results, gr.update(choices=names, value=names[0]), download_path,
                before_after, gallery)

    # The last upscale's message (an error, say) goes at once: the progress bar that follows is this upscale's.
    go.click(lambda: "Upscaling…", None, status, api_visibility="private", show_progress="hidden", queue=False).then(
        on_upscale, [files, model, model_file, outscale, tile, tile_pad],
        [status, results_state, shown, download, slider, side], api_visibility="private", show_progress_on=status)
    shown.change(views_of, [results_state, shown], [slider, side], api_visibility="private")
    return files
