"""What the use tabs share: a cancel flag per browser session, one generation from a checkpoint, and how a
handler's mistakes are shown."""
from __future__ import annotations

import functools
import threading
import time
import traceback
from pathlib import Path

import gradio as gr
from PIL import Image

from pipelines.api import SampleRequest, family_of, load, local_folder, pil_images, sample


class CancelFlags:
    """One cancel flag per browser session, set by a Cancel button and read between sampler steps."""

    def __init__(self):
        self.flags: dict[str, threading.Event] = {}

    def fresh(self, session: str) -> threading.Event:
        self.flags[session] = threading.Event()
        return self.flags[session]

    def cancel(self, session: str) -> None:
        if session in self.flags:
            self.flags[session].set()


def reports_errors(outputs: int, status: int = 0):
    """A tab's handler whose mistakes show as one line in its status Markdown next to its button, while the other
    outputs keep what they show: a gr.Error raised into the page covers every output with an "Error" badge.
    (The named API endpoints call the same run_* functions and still raise, so a client gets the error.)"""
    def wrap(handler):
        @functools.wraps(handler)  # Gradio reads the signature through it (gr.Request, gr.Progress parameters)
        def reporting(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except gr.Error as exc:
                message = exc.message
            except Exception as exc:  # a bug or a broken model file: say what, keep the traceback in the log
                traceback.print_exc()
                message = f"{type(exc).__name__}: {exc}"
            values = [gr.skip()] * outputs
            values[status] = f"⚠️ {message}"
            return values if outputs > 1 else values[0]
        return reporting
    return wrap


def step_callback(on_step=None, cancelled: threading.Event | None = None):
    """A sampler callback that reports each step to `on_step` and stops the sampler once `cancelled` is set."""
    def callback(info):
        if on_step:
            on_step(info)
        return not (cancelled and cancelled.is_set())
    return callback


def local_checkpoint(checkpoint: str) -> str:
    """The folder of a checkpoint typed or picked: a Hub id (user/name) typed where a folder goes is downloaded once
    into the Hub cache; offline and not cached, one line says so."""
    try:
        return str(local_folder(checkpoint))
    except FileNotFoundError as exc:
        raise gr.Error(str(exc)) from None


def run_generation(checkpoint: str, request: SampleRequest, on_step=None,
                   cancelled: threading.Event | None = None) -> tuple[list[Image.Image], str]:
    """The images of `request` from a checkpoint, and a sentence saying what was made and how fast."""
    if not checkpoint:
        raise gr.Error("Pick a checkpoint, or type the path of a diffusers folder.")
    checkpoint = local_checkpoint(checkpoint)
    if not Path(checkpoint).is_dir():
        raise gr.Error(f"checkpoint: {checkpoint} is not a folder")
    start = time.perf_counter()
    try:
        model = load(checkpoint)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None

    try:
        images = sample(model, request, callback=step_callback(on_step, cancelled))
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    secs = time.perf_counter() - start
    spec, r = family_of(checkpoint), request
    if "sampler" in spec.sample_options:
        how = f"{r.sampler}, {r.steps} steps"
    else:
        how = spec.noun + (f", truncation {r.truncation:g}" if r.truncation else "")
    size = model.image_size
    return pil_images(images), (f"{len(images)} images of {size}x{size} in {secs:.1f}s ({how}, seeds "
                                f"{r.seed}–{r.seed + len(images) - 1})")
