"""Chain tab: generate at low resolution with a diffusion, GAN or text-to-image checkpoint, upscale with a
super-resolution model (once or twice), optionally sharpen and adjust gamma; low-res | bicubic | super-resolved
side by side with each stage's time; downloads, and sending the results on to the Upscale tab."""
from __future__ import annotations

import zipfile
from pathlib import Path

import gradio as gr

from pipelines.api import SAMPLERS, SampleRequest, chain, families_of_kind, save_chain

from .. import views
from ..choices import follow_family, follow_samplers
from ..exports import new_folder
from ..generation import reports_errors

UPSCALERS = families_of_kind("upscaler")


def run_chain(generator: str, upscaler: str, request: SampleRequest, passes: int, unsharp: float, gamma: float,
              out_dir: Path, progress=None) -> dict:
    """{"comparison": PNG, "rows": [(path, caption)], "low": [...], "upscaled": [...], "zip", "note", "seconds"}."""
    if not generator:
        raise gr.Error("Pick a generator checkpoint (diffusion, GAN or text-to-image).")
    if not upscaler:
        raise gr.Error("Pick a super-resolution model, or drop a .pth / .safetensors file.")
    on_step = (lambda stage, done, total: progress(done / total, desc=f"{stage}: {done} of {total}")) if progress is not None else None
    try:
        result = chain(generator, upscaler, request, int(passes), float(unsharp), 2.0, float(gamma), progress=on_step)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    comparison = save_chain(result, out_dir, display=max(128, result.upscaled[0].width))
    rows = []
    for i in range(len(result.low)):
        rows += [(str(out_dir / kind / f"{i:03d}.png"), f"{i}: {caption}") for kind, caption in
                 (("low", f"generated {result.low[i].width}px"), ("bicubic", "bicubic"),
                  ("upscaled", f"super-resolved {result.upscaled[i].width}px"))]
    archive = out_dir / "chain.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # the three folders and the comparison (not the zip itself)
        for path in sorted(out_dir.rglob("*.png")):
            zf.write(path, path.relative_to(out_dir))
    times = " · ".join(f"{stage} **{secs:.1f}s**" for stage, secs in result.seconds.items())
    note = (f"{result.generator} → {result.upscaler}: {len(result.low)} images, {result.low[0].width}px → "
            f"{result.upscaled[0].width}px (x{result.scale}). {times}")
    return {"comparison": str(comparison), "rows": rows, "zip": str(archive), "note": note, "seconds": result.seconds,
            "low": [str(out_dir / "low" / f"{i:03d}.png") for i in range(len(result.low))],
            "upscaled": [str(out_dir / "upscaled" / f"{i:03d}.png") for i in range(len(result.upscaled))]}


def build(studio) -> tuple[gr.Button, gr.Button, gr.State]:
    """Returns the two send buttons and the state holding {"low": [...], "upscaled": [...]} for app.py to wire."""
    with gr.Row():
        generator = studio.lists.add(gr.Dropdown(
            [], label="Generator", scale=3, allow_custom_value=True, elem_id="chain-generator",
            info="Generates the low-resolution images: diffusion, GAN or text-to-image."), views.ALL_GENERATORS)
        upscaler = studio.lists.add(gr.Dropdown(
            [], label="Super-resolution model", scale=3, allow_custom_value=True, elem_id="chain-upscaler",
            info="A trained run, or a model file path."), UPSCALERS)
        model_file = gr.File(label="…or drop a model file", file_types=[".pth", ".safetensors"], scale=2, height=140)
    with gr.Row():
        prompt = gr.Textbox(label="Prompt (text-to-image generators)", scale=3, elem_id="chain-prompt",
                            placeholder="Describe the image, e.g. a red circle on a blue background")
        negative = gr.Textbox(label="Negative prompt", placeholder="Optional", scale=2)
    with gr.Row():
        num = gr.Slider(1, 8, value=4, step=1, label="Images")
        seed = gr.Number(0, precision=0, label="Seed")
        passes = gr.Radio([1, 2], value=1, label="Upscaling passes", info="Twice: x4 becomes x16.")
        unsharp = gr.Slider(0, 3, value=0, step=0.1, label="Unsharp mask", info="Strength after upscaling; 0 is off.")
        gamma = gr.Slider(0.5, 2.5, value=1.0, step=0.05, label="Gamma", info="Above 1 brightens mid-tones; 1 is off.")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            sampler = gr.Dropdown(list(SAMPLERS), value="dpm++", label="Sampler")
            steps = gr.Slider(1, 200, value=20, step=1, label="Steps")
            guidance = gr.Slider(1, 10, value=3, step=0.5, label="Guidance")
            class_label = gr.Number(-1, precision=0, minimum=-1, label="Class (-1: all)")
            truncation = gr.Slider(0, 3, value=0, step=0.1, label="Truncation")
    follow_family(generator, views.ALL_GENERATORS, {
        "prompt": [prompt, negative], "sampler": [sampler], "steps": [steps], "guidance": [guidance],
        "class": [class_label], "truncation": [truncation]})
    follow_samplers(generator, [sampler])
    with gr.Row(equal_height=True):
        go = gr.Button("Generate and upscale", variant="primary", elem_id="chain-run", scale=1)
        note = gr.Markdown(elem_id="chain-note", min_height=40)
    comparison = gr.Image(label="Low-res (enlarged, unsmoothed) · bicubic · super-resolved", type="filepath",
                          elem_id="chain-comparison")
    gallery = gr.Gallery(label="Each image: generated · bicubic · super-resolved", columns=3, height=480,
                         object_fit="contain", elem_id="chain-gallery")
    with gr.Row():
        download = gr.File(label="Download everything (zip)", elem_id="chain-download")
        send_low = gr.Button("Send the low-res images to Upscale", elem_id="chain-send-low")
        send_up = gr.Button("Send the upscaled images to Upscale", elem_id="chain-send-upscaled")
    outputs = gr.State({"low": [], "upscaled": []})

    @reports_errors(outputs=5, status=0)
    def on_chain(gen, up, dropped, p, neg, n, sd, n_passes, smp, n_steps, g, cls, trunc, sharp, gam, progress=gr.Progress()):
        asked = SampleRequest.of(prompt=p, negative_prompt=neg, num=n, seed=sd, sampler=smp, steps=n_steps, guidance=g,
                                 class_label=cls, truncation=trunc)
        result = run_chain(gen, dropped or up, asked, n_passes, sharp, gam, new_folder(studio.workspace, "chain"), progress)
        return result["note"], result["comparison"], result["rows"], result["zip"], {k: result[k] for k in ("low", "upscaled")}

    go.click(on_chain, [generator, upscaler, model_file, prompt, negative, num, seed, passes, sampler, steps, guidance,
                        class_label, truncation, unsharp, gamma], [note, comparison, gallery, download, outputs],
             api_visibility="private", show_progress_on=comparison)
    return send_low, send_up, outputs
