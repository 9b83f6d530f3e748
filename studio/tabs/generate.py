"""Generate tab: any checkpoint (a run's final, best or intermediate one, diffusion or GAN, or a diffusers folder)."""
from __future__ import annotations

import gradio as gr
from PIL import Image

from pipelines.api import SAMPLERS, Cancelled, SampleRequest

from .. import views
from ..choices import follow_family, follow_samplers
from ..generation import CancelFlags, reports_errors, run_generation


def build(studio) -> None:
    flags = CancelFlags()
    checkpoint = studio.lists.add(gr.Dropdown(
        [], label="Checkpoint", allow_custom_value=True, elem_id="gen-checkpoint",
        info="Any run's final, best or intermediate checkpoint (diffusion or GAN), newest run first; or type the path "
             "of a diffusers folder. The list follows the runs."), views.GENERATORS)
    with gr.Row():
        sampler = gr.Dropdown(list(SAMPLERS), value="dpm++", label="Sampler", elem_id="gen-sampler", info="Those the checkpoint's objective can use. dpm++ is good at 20 steps; ddpm needs ~1000; heun (edm, flow) takes 2 evaluations a step.")
        steps = gr.Slider(1, 1000, value=20, step=1, label="Steps", elem_id="gen-steps")
        seed = gr.Number(0, precision=0, label="Seed", info="Image i uses seed + i.")
        num = gr.Slider(1, 64, value=16, step=1, label="Number of images")
        class_label = gr.Number(-1, precision=0, minimum=-1, label="Class (-1: all classes)", info="For class-conditional models.")
        guidance = gr.Slider(1, 10, value=1, step=0.5, label="Guidance", elem_id="gen-guidance", info="Classifier-free guidance scale; 1 is none.")
        truncation = gr.Slider(0, 3, value=0, step=0.1, label="Truncation", elem_id="gen-truncation",
                               info="Redraw noise beyond ±T: lower is more typical, less varied; 0 is off.")
    with gr.Row(equal_height=True):
        go = gr.Button("Generate", variant="primary", elem_id="generate", scale=1)
        cancel = gr.Button("Cancel", elem_id="cancel-generate", scale=0, min_width=100)
        took = gr.Markdown(elem_id="generate-time", min_height=40)
    gallery = gr.Gallery(label="Images", columns=8, height="auto", elem_id="gallery")
    gr.Markdown("Between two seeds or two prompts: the **Interpolate** tab. Checkpoints side by side: **Compare**.")
    follow_family(checkpoint, views.GENERATORS, {"sampler": [sampler], "steps": [steps], "guidance": [guidance],
                                                 "class": [class_label], "truncation": [truncation]})
    follow_samplers(checkpoint, [sampler])

    @reports_errors(outputs=2, status=1)
    def generate_in_tab(ckpt, smp, n_steps, sd, n, cls, g, trunc, request: gr.Request, progress=gr.Progress()):
        cancelled = flags.fresh(request.session_hash or "")
        try:
            asked = SampleRequest.of(sampler=smp, steps=n_steps, seed=sd, num=n, class_label=cls, guidance=g, truncation=trunc)
            pictures, took = run_generation(ckpt, asked, cancelled=cancelled,
                                            on_step=lambda info: progress((info["step"], info["total"]), desc="sampling", unit="steps"))
        except Cancelled as exc:
            return gr.skip(), f"Cancelled ({exc})."
        # Small samples are enlarged without smoothing so that pixels stay pixels.
        return [p.resize((128, 128), Image.Resampling.NEAREST) if p.width < 128 else p for p in pictures], took

    go.click(generate_in_tab, [checkpoint, sampler, steps, seed, num, class_label, guidance, truncation], [gallery, took],
             api_visibility="private", show_progress_on=gallery)

    def on_cancel(request: gr.Request):
        flags.cancel(request.session_hash or "")

    cancel.click(on_cancel, None, None, api_visibility="private")
