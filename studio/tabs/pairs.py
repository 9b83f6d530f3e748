"""The super-resolution form's "Prepare pairs" section: `python -m pipelines degrade` from the browser.

When the pairs are written, the form switches the run to them (sr.source pairs, sr.pairs_dir, data.dataset
and data.image_size), so that Start trains on exactly what was prepared.
"""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from pipelines.api import DEGRADATIONS as KINDS
from pipelines.api import RESIZE_METHODS as METHODS
from pipelines.api import plan_pairs, prepare_pairs

from ..forms import full_yaml, load_yaml, set_path


def build(studio, dataset: gr.Dropdown, yaml_box: gr.Code, fields: dict) -> gr.Accordion:
    """The section (inside the super-resolution form group); `fields` maps dotted paths to that form's components."""
    with gr.Accordion("Prepare LR pairs from a folder of HR images (optional)", open=False) as section:
        gr.Markdown("Makes `scale_<s>x/<category>/<name>_lr_<s>x.png` and `..._upsampled_<s>x.png` for every image "
                    "(as `python -m pipelines degrade`); finished pairs are skipped when run again.")
        with gr.Row():
            source = gr.Textbox(label="HR image folder", info="Subfolders are categories. Default: the dataset above.",
                                elem_id="pairs-input")
            output = gr.Textbox(label="Output folder", info="Default: <workspace>/pairs/<folder name>.", elem_id="pairs-output")
        with gr.Row():
            scales = gr.CheckboxGroup([2, 3, 4], value=[4], label="Scales")
            size = gr.Number(256, label="HR size", minimum=32, maximum=2048, precision=0,
                             info="Images are cropped to a centre square and resized to this.")
            method = gr.Dropdown(list(METHODS), value="cubic", label="Resize method")
            degradation = gr.Dropdown(list(KINDS), value="bicubic", label="Degradation",
                                      info="realesrgan: blur, resize, noise and JPEG in two stages, seeded per image.")
        with gr.Row():
            sample = gr.Slider(0.01, 1.0, value=1.0, step=0.01, label="Share of the images to process")
            workers = gr.Number(1, label="Worker processes", minimum=1, maximum=64, precision=0)
            go = gr.Button("Prepare pairs", elem_id="pairs-run")
        report = gr.Markdown(elem_id="pairs-report")

    def on_prepare(folder, out, chosen_scales, hr_size, resize, kind, share, n_workers, data_name, text,
                   progress=gr.Progress(track_tqdm=True)):
        folder = (folder or data_name or "").strip()
        if not folder or not Path(folder).expanduser().is_dir():
            raise gr.Error(f"HR image folder: {folder or '(empty)'} is not a folder on this machine")
        src = Path(folder).expanduser().resolve()
        out_dir = Path(out).expanduser() if out else studio.workspace / "pairs" / src.name
        try:
            plan = plan_pairs(src, out_dir, sorted(int(s) for s in chosen_scales or []), int(hr_size), resize, kind,
                              float(share))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        start = time.perf_counter()
        stats = prepare_pairs(plan, workers=int(n_workers or 1), progress=True)
        raw = load_yaml(text)
        updates = {"sr.source": "pairs", "sr.pairs_dir": str(out_dir.resolve()), "data.dataset": str(src),
                   "data.image_size": int(hr_size)}
        if int(raw.get("model", {}).get("scale", 4)) not in plan.scales:
            updates["model.scale"] = plan.scales[-1]
        for path, value in updates.items():
            set_path(raw, path, value)
        lines = [f"**Pairs ready** in `{out_dir}` ({time.perf_counter() - start:.1f} s): {stats['total_processed']} images "
                 f"processed, {stats.get('already_done', 0)} already done, {stats['total_failed']} failed."]
        lines += [f"- ⚠️ `{f['file']}`: {f['reason']}" for f in stats["failures"][:10]]
        lines.append("The form now trains on these pairs (source pairs, pairs dir, dataset and HR size set).")
        field_updates = [gr.update(value=updates[p]) if p in updates else gr.update() for p in fields]
        return ["\n".join(lines), str(src), full_yaml(raw), *field_updates]

    go.click(on_prepare, [source, output, scales, size, method, degradation, sample, workers, dataset, yaml_box],
             [report, dataset, yaml_box, *fields.values()], api_visibility="private")
    return section
