"""Interpolate tab: frames between two seeds (diffusion: spherical interpolation of the starting noise with
deterministic DDIM; GAN: in z) or between two prompts (text-to-image: interpolated text states, fixed noise);
a strip, and a GIF or MP4 to download."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
from PIL import Image

from pipelines.api import (
    SampleRequest,
    interpolate,
    interpolate_prompts,
    labelled_rows,
    load,
    save_gif,
    save_mp4,
)

from .. import views
from ..choices import sample_options, shown
from ..exports import new_folder
from ..generation import local_checkpoint, reports_errors

SEEDS, PROMPTS = "Between two seeds", "Between two prompts"


def run_interpolation(checkpoint: str, mode: str, request: SampleRequest, seed_b: int, prompt_b: str, frames: int,
                      video: str, out_dir: Path) -> dict:
    """{"strip": PNG, "gif": GIF, "mp4": MP4 or None, "download": the chosen animation, "note": a sentence}.
    `request` holds the first seed and prompt, the steps, class, guidance and truncation."""
    checkpoint = local_checkpoint(checkpoint) if checkpoint else checkpoint
    if not checkpoint or not Path(checkpoint).is_dir():
        raise gr.Error("Pick a checkpoint first." if not checkpoint else f"checkpoint: {checkpoint} is not a folder")
    start, r = time.perf_counter(), request
    try:
        model = load(checkpoint)
        if mode == PROMPTS:
            images = interpolate_prompts(model, r, prompt_b or "", int(frames))
            what = f"“{r.prompt}” → “{prompt_b}”, seed {r.seed}"
        else:
            if not model.takes_prompt:  # the prompt field is for models that take one
                r = r.but(prompt=None)
            images = interpolate(model, r, int(seed_b), int(frames))
            what = f"seed {r.seed} → {int(seed_b)}" + (f" of “{r.prompt}”" if r.prompt else "")
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    strip = out_dir / "frames.png"
    Image.fromarray(labelled_rows([(what.replace("“", '"').replace("”", '"').replace("→", "->"), images)], 64)).save(strip)
    gif = save_gif(images, out_dir / "interpolation.gif", display=128)
    mp4 = save_mp4(images, out_dir / "interpolation.mp4", display=256) if video == "MP4" else None
    note = f"{len(images)} frames, {what}, in {time.perf_counter() - start:.1f}s"
    return {"strip": str(strip), "gif": str(gif), "mp4": str(mp4) if mp4 else None, "download": str(mp4 or gif), "note": note}


def build(studio) -> None:
    checkpoint = studio.lists.add(gr.Dropdown(
        [], label="Checkpoint", allow_custom_value=True, elem_id="interp-checkpoint",
        info="Diffusion, GAN or text-to-image, newest run first."), views.ALL_GENERATORS)
    mode = gr.Radio([SEEDS, PROMPTS], value=SEEDS, label="Interpolate", elem_id="interp-mode",
                    info="Between two prompts: text-to-image checkpoints, the same starting noise throughout.")
    with gr.Row():
        seed_a = gr.Number(0, precision=0, label="First seed", elem_id="interp-seed-a")
        seed_b = gr.Number(1, precision=0, label="Second seed", elem_id="interp-seed-b")
        prompt_a = gr.Textbox(label="Prompt", placeholder="Describe the image, e.g. a red circle on a blue background",
                              elem_id="interp-prompt-a")
        prompt_b = gr.Textbox(label="Second prompt", placeholder="e.g. a green square on a white background",
                              visible=False, elem_id="interp-prompt-b")
    with gr.Row():
        frames = gr.Slider(2, 32, value=8, step=1, label="Frames")
        steps = gr.Slider(5, 200, value=50, step=1, label="DDIM steps")
        class_label = gr.Number(-1, precision=0, minimum=-1, label="Class (-1: class 0)")
        guidance = gr.Slider(1, 10, value=3, step=0.5, label="Guidance")
        truncation = gr.Slider(0, 3, value=0, step=0.1, label="Truncation")
        video = gr.Radio(["GIF", "MP4"], value="GIF", label="Download as", elem_id="interp-format")
    with gr.Row(equal_height=True):
        go = gr.Button("Interpolate", variant="primary", elem_id="interpolate", scale=1)
        note = gr.Markdown(elem_id="interpolate-note", min_height=40)
    strip = gr.Image(label="Frames", type="filepath", elem_id="interpolation-strip")
    with gr.Row():
        gif = gr.Image(label="Animation (GIF)", type="filepath", elem_id="interpolation-gif")
        mp4 = gr.Video(label="Animation (MP4)", visible=False, elem_id="interpolation-mp4")
        download = gr.File(label="Download", elem_id="interpolation-download")

    def fields_of(picked, how):
        """The fields of the mode and of the picked checkpoint's family: both seeds between seeds (and a prompt for a
        text-to-image model), both prompts and the one seed of the fixed noise between prompts."""
        options = sample_options(picked, views.ALL_GENERATORS)
        text = "prompt" in options
        how = how if text else SEEDS  # between prompts needs a model that takes them
        seeds = how == SEEDS
        return (gr.update(choices=[SEEDS, PROMPTS] if text else [SEEDS], value=how),
                gr.update(label="First seed" if seeds else "Seed (the noise throughout)"), gr.update(visible=seeds),
                gr.update(visible=text, label="Prompt" if seeds else "First prompt"), gr.update(visible=not seeds),
                *shown(options, {"steps": [steps], "class": [class_label], "guidance": [guidance],
                                 "truncation": [truncation]}))

    for trigger in (checkpoint.change, mode.input):
        trigger(fields_of, [checkpoint, mode], [mode, seed_a, seed_b, prompt_a, prompt_b, steps, class_label, guidance,
                                                truncation], api_visibility="private", show_progress="hidden")

    @reports_errors(outputs=5, status=0)
    def on_interpolate(ckpt, how, sd_a, sd_b, p_a, p_b, n_frames, n_steps, cls, g, trunc, fmt):
        asked = SampleRequest.of(seed=sd_a, prompt=p_a, steps=n_steps, class_label=cls, guidance=g, truncation=trunc)
        result = run_interpolation(ckpt, how, asked, sd_b, p_b, n_frames, fmt, new_folder(studio.workspace, "interpolate"))
        return (result["note"], result["strip"], result["gif"], gr.update(value=result["mp4"], visible=bool(result["mp4"])),
                result["download"])

    go.click(on_interpolate, [checkpoint, mode, seed_a, seed_b, prompt_a, prompt_b, frames, steps, class_label, guidance,
                              truncation, video], [note, strip, gif, mp4, download], api_visibility="private",
             show_progress_on=strip)
