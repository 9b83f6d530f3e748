"""Prompt tab: a text-to-image checkpoint, a prompt (and negative prompt), guidance, steps, sampler, seed and
count; a gallery, the prompts of this session to pick again, and "send to upscale"."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from pipelines.api import (
    FAMILIES,
    SAMPLERS,
    Cancelled,
    SampleRequest,
    families_of_kind,
    load,
    pil_images,
    sample,
)

from ..choices import follow_family, follow_samplers
from ..generation import CancelFlags, reports_errors, step_callback

TEXT_FAMILIES = families_of_kind("text")
HISTORY = 30  # prompts remembered per session
STARTER = FAMILIES[TEXT_FAMILIES[0]].form  # its default preset: a small model of built-in captioned shapes
NO_CHECKPOINT = ("Pick a text-to-image checkpoint first. None yet? **Train one** (the button under the checkpoint "
                 f"list) trains the preset `{STARTER.default_preset}` in one click, or pick the family *{STARTER.label}* "
                 "in the Train tab; its checkpoints show in the list as it saves them.")


def run_prompt(checkpoint: str, request: SampleRequest, out_dir: Path, on_step=None, cancelled=None) -> tuple[list[str], str]:
    """Generate and save PNGs; returns their paths and a line saying what was made."""
    if not checkpoint or not Path(checkpoint).is_dir():
        raise gr.Error(NO_CHECKPOINT if not checkpoint else f"checkpoint: {checkpoint} is not a folder")
    if not request.prompt:  # the grey example in the box is a placeholder, never sent
        raise gr.Error("Prompt: empty; describe the image you want.")
    start = time.perf_counter()

    try:
        model = load(checkpoint)
        images = sample(model, request, callback=step_callback(on_step, cancelled))
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp, paths = int(time.time() * 1000), []
    for i, img in enumerate(pil_images(images)):
        path = out_dir / f"prompt-{stamp}-{i:02d}.png"
        img.save(path)
        paths.append(str(path))
    size, r = model.image_size, request
    return paths, (f"{len(images)} images of {size}x{size} in {time.perf_counter() - start:.1f}s ({r.sampler}, {r.steps} steps, "
                   f"guidance {r.guidance:g}, seeds {r.seed}–{r.seed + len(images) - 1})")


def starter_text() -> str:
    """What the starter button trains, from its preset."""
    from ..forms import load_yaml

    raw = load_yaml((STARTER.config_dir / STARTER.default_preset).read_text())
    budget = (raw.get("training") or {}).get("max_minutes")
    return (f"No text-to-image model yet? This trains a small one on the built-in captioned shapes "
            f"({raw['data']['image_size']} px" + (f", at most {budget:g} minutes" if budget else "") + "); or pick the "
            f"family *{STARTER.label}* in the Train tab for your own captioned images.")


def build(studio):
    """Returns the "send to upscale" button and the picked image, which the app wires to the Upscale tab."""
    flags = CancelFlags()
    checkpoint = studio.lists.add(gr.Dropdown(
        [], label="Checkpoint", allow_custom_value=True, elem_id="prompt-checkpoint",
        info="A text-to-image run's final, best or intermediate checkpoint, newest run first."), TEXT_FAMILIES)
    with gr.Row(equal_height=True):
        starter = gr.Button(f"Train one: {STARTER.default_preset}", size="sm", scale=0, min_width=240,
                            elem_id="prompt-train-starter")
        starter_note = gr.Markdown(starter_text(), elem_id="prompt-starter-note")
    prompt = gr.Textbox(label="Prompt", placeholder="Describe the image, e.g. a red circle on a blue background",
                        elem_id="prompt-text")
    negative = gr.Textbox(label="Negative prompt", placeholder="Optional: what guidance steers away from",
                          info="Empty: the unconditional model.", elem_id="prompt-negative")
    with gr.Row():
        guidance = gr.Slider(1, 15, value=3, step=0.5, label="Guidance", info="Classifier-free guidance; 1 is none.")
        steps = gr.Slider(1, 1000, value=20, step=1, label="Steps")
        sampler = gr.Dropdown(list(SAMPLERS), value="dpm++", label="Sampler")
        seed = gr.Number(0, precision=0, label="Seed", info="Image i uses seed + i.")
        num = gr.Slider(1, 64, value=8, step=1, label="Number of images")
    with gr.Row(equal_height=True):
        go = gr.Button("Generate", variant="primary", elem_id="prompt-generate", scale=1)
        cancel = gr.Button("Cancel", scale=0, min_width=100)
        took = gr.Markdown(elem_id="prompt-time", min_height=40)
    gallery = gr.Gallery(label="Images (click one to pick it)", columns=8, height="auto", elem_id="prompt-gallery")
    with gr.Row():
        history = gr.Dropdown([], label="Prompts of this session", info="Pick one to use it again.", scale=4, elem_id="prompt-history")
        send = gr.Button("Send the picked image to Upscale", scale=2, elem_id="prompt-send")
    picked = gr.State(None)
    past = gr.State([])
    follow_family(checkpoint, TEXT_FAMILIES, {"prompt": [prompt, negative], "guidance": [guidance], "steps": [steps],
                                              "sampler": [sampler]})
    follow_samplers(checkpoint, [sampler])

    # Not called `generate`: Gradio names an event after its function, which would take the /generate API name.
    @reports_errors(outputs=5, status=1)
    def generate_from_prompt(ckpt, text, neg, g, n_steps, smp, sd, n, prompts, request: gr.Request, progress=gr.Progress()):
        cancelled = flags.fresh(request.session_hash or "")
        try:
            asked = SampleRequest.of(prompt=text, negative_prompt=neg, sampler=smp, steps=n_steps, seed=sd, num=n, guidance=g)
            paths, line = run_prompt(ckpt, asked, studio.workspace / "exports" / "prompt",
                                     lambda info: progress((info["step"], info["total"]), desc="sampling", unit="steps"), cancelled)
        except Cancelled as exc:
            return gr.skip(), f"Cancelled ({exc}).", prompts, gr.skip(), None
        prompts = [text] + [p for p in prompts if p != text][:HISTORY - 1]
        shown = [(p, text) for p in paths]
        return shown, line, prompts, gr.update(choices=prompts, value=None), paths[0]

    go.click(generate_from_prompt, [checkpoint, prompt, negative, guidance, steps, sampler, seed, num, past],
             [gallery, took, past, history, picked], api_visibility="private", show_progress_on=gallery)

    def on_cancel(request: gr.Request):
        flags.cancel(request.session_hash or "")

    def on_pick(evt: gr.SelectData):
        return evt.value["image"]["path"]

    def on_starter():
        try:
            name = studio.manager.start((STARTER.config_dir / STARTER.default_preset).read_text())
        except ValueError as exc:  # ConfigError too
            return f"**Not started:** {exc}"
        return (f"Queued **{name}**: follow it in the Runs tab; its checkpoints show in the list above as it saves "
                "them (the first after a few minutes).")

    starter.click(on_starter, None, starter_note, api_visibility="private")
    cancel.click(on_cancel, None, None, api_visibility="private")
    history.select(lambda value: value, history, prompt, api_visibility="private")
    gallery.select(on_pick, None, picked, api_visibility="private")
    return send, picked
