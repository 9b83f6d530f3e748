"""Generate tab: any checkpoint (a run's final, best or intermediate one, diffusion or GAN, or a diffusers folder)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from pipelines.api import GANModel, load, sample
from pipelines.sample.diffusion import SAMPLERS, Cancelled
from pipelines.sample.images import pil_images

from .. import views


class CancelFlags:
    """One cancel flag per browser session, set by the Cancel button and read between sampler steps."""

    def __init__(self):
        self.flags: dict[str, threading.Event] = {}

    def fresh(self, session: str) -> threading.Event:
        self.flags[session] = threading.Event()
        return self.flags[session]

    def cancel(self, session: str) -> None:
        if session in self.flags:
            self.flags[session].set()


def label_value(value: float | None) -> int | None:
    """The class field's value for the engine: -1 or empty means no class."""
    return None if value in (None, "") or value < 0 else int(value)


def run_generation(checkpoint: str, sampler: str, steps: int, seed: int, num: int, class_label: float | None,
                   guidance: float, truncation: float = 0.0, on_step=None,
                   cancelled: threading.Event | None = None) -> tuple[list[Image.Image], str]:
    if not checkpoint:
        raise gr.Error("Pick a checkpoint, or type the path of a diffusers folder.")
    if not Path(checkpoint).is_dir():
        raise gr.Error(f"checkpoint: {checkpoint} is not a folder")
    start = time.perf_counter()
    try:
        model = load(checkpoint)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None

    def callback(info):
        if on_step:
            on_step(info)
        return not (cancelled and cancelled.is_set())

    try:
        images = sample(model, sampler, int(steps), int(num), int(seed), label_value(class_label), float(guidance),
                        truncation=float(truncation) or None, callback=callback)
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    secs = time.perf_counter() - start
    pictures = pil_images(images)
    size = model.image_size
    how = f"GAN{f', truncation {truncation:g}' if truncation else ''}" if isinstance(model, GANModel) else f"{sampler}, {int(steps)} steps"
    return pictures, f"{len(images)} images of {size}x{size} in {secs:.1f}s ({how}, seeds {int(seed)}–{int(seed) + len(images) - 1})"


def build(studio) -> None:
    flags = CancelFlags()
    store = studio.manager.store
    with gr.Row():
        checkpoint = gr.Dropdown(views.checkpoint_choices(store), label="Checkpoint", allow_custom_value=True, scale=4,
                                 info="Any run's final, best or intermediate checkpoint (diffusion or GAN), or type the path of a diffusers folder.",
                                 elem_id="gen-checkpoint")
        refresh = gr.Button("↻ Refresh list", scale=1)
    with gr.Row():
        sampler = gr.Dropdown(list(SAMPLERS), value="dpm++", label="Sampler", info="Diffusion only: dpm++ is good at 20 steps; ddpm needs ~1000.")
        steps = gr.Slider(1, 1000, value=20, step=1, label="Steps")
        seed = gr.Number(0, precision=0, label="Seed", info="Image i uses seed + i.")
        num = gr.Slider(1, 64, value=16, step=1, label="Number of images")
        class_label = gr.Number(-1, precision=0, minimum=-1, label="Class (-1: all classes)", info="For class-conditional models.")
        guidance = gr.Slider(1, 10, value=1, step=0.5, label="Guidance", info="Diffusion: classifier-free guidance scale; 1 is none.")
        truncation = gr.Slider(0, 3, value=0, step=0.1, label="Truncation (GAN)",
                               info="Redraw noise beyond ±T: lower is more typical, less varied; 0 is off.")
    with gr.Row():
        go = gr.Button("Generate", variant="primary", elem_id="generate")
        cancel = gr.Button("Cancel", elem_id="cancel-generate")
    took = gr.Markdown(elem_id="generate-time")
    gallery = gr.Gallery(label="Images", columns=8, height="auto", elem_id="gallery")
    gr.Markdown("Between two seeds or two prompts: the **Interpolate** tab. Checkpoints side by side: **Compare**.")

    refresh.click(lambda: gr.update(choices=views.checkpoint_choices(store)), None, checkpoint, api_visibility="private")
    def generate_in_tab(ckpt, smp, n_steps, sd, n, cls, g, trunc, request: gr.Request, progress=gr.Progress()):
        cancelled = flags.fresh(request.session_hash or "")
        try:
            pictures, took = run_generation(ckpt, smp, n_steps, sd, n, cls, g, trunc, cancelled=cancelled,
                                            on_step=lambda info: progress((info["step"], info["total"]), desc="sampling", unit="steps"))
        except Cancelled as exc:
            return [], f"Cancelled ({exc})."
        # Small samples are enlarged without smoothing so that pixels stay pixels.
        return [p.resize((128, 128), Image.Resampling.NEAREST) if p.width < 128 else p for p in pictures], took

    go.click(generate_in_tab, [checkpoint, sampler, steps, seed, num, class_label, guidance, truncation], [gallery, took],
                     api_visibility="private")
    def on_cancel(request: gr.Request):
        flags.cancel(request.session_hash or "")

    cancel.click(on_cancel, None, None, api_visibility="private")
