"""Train tab: family, preset, dataset (built-in, folder, zip upload, hub id), a generated form, the YAML.

Each model family (its Form, in pipelines/families/<name>/) gets its own group of form fields, shown when it is picked; the YAML
under Advanced holds the whole config. On Start the form's values win over the same keys in the YAML.
"""
from __future__ import annotations

import gradio as gr
import numpy as np

from pipelines.api import (
    BUILTIN,
    FAMILIES,
    dataset_preview,
    describe_preparation,
    make_grid,
    upscale_for_display,
)
from pipelines.config import (
    ConfigError,
    RunConfig,
    config_to_yaml,
    parse_yaml,
    validate_config,
)

from ..budget import budget_text
from ..forms import (
    component_for,
    field_tip,
    form_value,
    full_yaml,
    get_path,
    load_yaml,
    normalise,
    set_path,
)
from ..uploads import UploadError, unpack_images_zip
from . import dataset_fit, pairs, sweep_form

# Parts of the form that a family asks for by name (Form.extras): preparing LR pairs for super-resolution.
EXTRAS = {"lr-pairs": pairs.build}


DATASET_INFO = "A built-in set, a folder of images on this machine, or a Hugging Face dataset id."


def preset_yaml(family: str, preset: str) -> str:
    return full_yaml(load_yaml((FAMILIES[family].form.config_dir / preset).read_text()))


def build(studio) -> None:
    first = next(iter(FAMILIES.values()))  # the first registered: unconditional diffusion
    start_yaml = preset_yaml(first.name, first.form.default_preset)
    with gr.Row(equal_height=False):
        family = gr.Dropdown([(f.form.label, f.name) for f in FAMILIES.values()], value=first.name, label="Model family",
                             elem_id="train-family", info="What kind of model to train.", scale=2)
        preset = gr.Dropdown(first.form.presets(), value=first.form.default_preset, label="Preset", elem_id="train-preset",
                             info="A starting config from configs/; everything below can be changed.", scale=2)
        with gr.Column(scale=3, min_width=260):  # Start stays in view: the form below is long
            start = gr.Button("Start training", variant="primary", elem_id="start-training")
            budget = gr.Markdown(budget_text(studio.manager.store, validate_config(load_yaml(start_yaml))),
                                 elem_id="train-budget")
    status = gr.Markdown(elem_id="train-status")
    confirmed = gr.State(None)  # the config a person was warned is already queued or running; a second Start queues it
    with gr.Row():
        dataset = gr.Dropdown(list(BUILTIN), value=load_yaml(start_yaml)["data"]["dataset"], allow_custom_value=True,
                              label="Dataset", scale=3, elem_id="train-dataset", info=DATASET_INFO)
        upload = gr.File(label="…or upload a zip of images (subfolders become classes)", file_types=[".zip"], scale=2)
    fit = dataset_fit.DatasetFit()
    with gr.Accordion("Preview the dataset as it will be trained on", open=False):
        with gr.Row():
            preview_btn = gr.Button("Preview", size="sm", scale=0)
            prepare_btn = gr.Button("Prepare now and check every image", size="sm", scale=0)
        with gr.Row():
            preview_text = gr.Markdown(elem_id="dataset-preview")
            preview_grid = gr.Image(label="preprocessed images", show_label=True, interactive=False, height=260,
                                    elem_id="dataset-preview-grid")
    fields: dict[tuple[str, str], gr.components.Component] = {}  # (family, dotted path) -> component
    groups: dict[str, gr.Group] = {}
    with gr.Accordion("Advanced: the full config (YAML)", open=False, render=False) as advanced:
        yaml_box = gr.Code(start_yaml, language="yaml", label="config.yaml", interactive=True, lines=20)

    def add_fields(fam: str, raw: dict, paths, per_row: int) -> None:
        for row_paths in _rows(paths, per_row):
            with gr.Row():
                for path in row_paths:
                    fields[(fam, path)] = component_for(fam, path, get_path(raw, path))

    for spec in FAMILIES.values():
        raw = load_yaml(preset_yaml(spec.name, spec.form.default_preset))
        with gr.Group(visible=spec.name == first.name) as groups[spec.name]:
            add_fields(spec.name, raw, spec.form.fields, per_row=4)
            for title, paths in spec.form.sections:
                with gr.Accordion(title, open=False):
                    add_fields(spec.name, raw, paths, per_row=3)
            for extra in spec.form.extras:
                EXTRAS[extra](studio, dataset, yaml_box, {p: c for (f, p), c in fields.items() if f == spec.name})
    advanced.render()
    keys = list(fields)
    components = [fields[k] for k in keys]

    def infos(fam: str, errors: dict[str, str] | None = None) -> list:
        errors = errors or {}
        return [field_note(errors.get(p), field_tip(f, p)) if f == fam else gr.update() for f, p in keys]

    def on_preset(fam, name):
        if not name:
            return [gr.update()] * (2 + len(keys))
        text = preset_yaml(fam, name)
        raw = load_yaml(text)
        values = [gr.update(value=form_value(f, p, get_path(raw, p))) if f == fam else gr.update() for f, p in keys]
        return [text, raw["data"]["dataset"], *values]

    # Only a person's pick of a preset loads it; a family switch sets its default preset and YAML in one response,
    # so that nothing arrives later to overwrite what was typed meanwhile.
    preset.input(on_preset, [family, preset], [yaml_box, dataset, *components], api_visibility="private")

    def on_family(fam):
        form = FAMILIES[fam].form
        return [gr.update(choices=form.presets(), value=form.default_preset), *on_preset(fam, form.default_preset),
                *[gr.update(visible=name == fam) for name in groups]]

    family.change(on_family, family, [preset, yaml_box, dataset, *components, *groups.values()], api_visibility="private")

    def edit(fam, path):
        """The YAML with this field's new value, and the field's note: its tip, or what is wrong with the value."""
        def apply(text, value):
            try:
                raw = load_yaml(text)
            except ValueError:
                return gr.update(), gr.update()
            set_path(raw, path, normalise(fam, path, value) if fam else value)
            return full_yaml(raw), field_note(field_problem(raw, path), field_tip(fam, path) if fam else DATASET_INFO)
        return apply

    for (fam, path), comp in fields.items():
        # One edit at a time, so quick successive edits do not overwrite each other's YAML.
        # always_last: an edit made while the previous one is still pending is applied after it, never dropped.
        comp.input(edit(fam, path), [yaml_box, comp], [yaml_box, comp], api_visibility="private",
                   concurrency_id="yaml-edit", concurrency_limit=1, trigger_mode="always_last")
    for event in (dataset.input, dataset.select):
        event(edit(None, "data.dataset"), [yaml_box, dataset], [yaml_box, dataset], api_visibility="private",
              concurrency_id="yaml-edit", concurrency_limit=1, trigger_mode="always_last")

    def on_yaml(text):
        try:
            return budget_text(studio.manager.store, validate_config(load_yaml(text)))
        except ValueError:  # ConfigError too: the fields say what is wrong
            return gr.update()

    yaml_box.change(on_yaml, yaml_box, budget, api_visibility="private", show_progress="hidden")

    def on_upload(file, text):
        if file is None:
            return gr.update(), gr.update(), ""
        try:
            folder = unpack_images_zip(file, studio.workspace / "uploads")
        except UploadError as exc:
            return gr.update(), gr.update(), f"**Upload refused:** {exc}"
        raw = load_yaml(text)
        set_path(raw, "data.dataset", str(folder))
        return str(folder), full_yaml(raw), f"Unpacked to `{folder}`."

    upload.upload(on_upload, [upload, yaml_box], [dataset, yaml_box, status], api_visibility="private")

    def form_config(form: dict):
        """The config of the form: the YAML, with the picked family's fields and the dataset over it."""
        fam = form[family]
        raw = load_yaml(form[yaml_box])
        if raw.get("family") != fam:  # the picked family's preset has not reached the YAML yet: start from it
            name = form[preset] if form[preset] in FAMILIES[fam].form.presets() else FAMILIES[fam].form.default_preset
            raw = load_yaml(preset_yaml(fam, name))
        set_path(raw, "data.dataset", form[dataset])
        for (f, path), comp in fields.items():
            if f == fam:
                set_path(raw, path, normalise(f, path, form[comp]))
        return validate_config(raw)

    def previewer(prepare: bool):
        def on_preview(form: dict, progress=gr.Progress()):
            try:
                data = form_config(form).data
                shown = dataset_preview(data, studio.workspace, prepare=prepare,
                                        progress=lambda done, total, rate: progress(done / max(total, 1), desc=describe_preparation(done, total, rate)))
            except ConfigError as exc:
                return "\n".join(f"- `{f}`: {m}" for f, m in exc.errors), None, *unfitted
            except (ValueError, OSError) as exc:
                return f"**Cannot read the dataset:** {exc}", None, *unfitted
            grid = None
            fitted = fit.shown(shown.proposal, form[family], fields)
            if shown.grid:  # small images enlarged (nearest neighbour) so that their pixels can be seen
                images = np.stack(shown.grid)
                grid = make_grid(upscale_for_display(images, max(64, images.shape[1])), ncols=8)
            return preview_markdown(shown), grid, *fitted
        return on_preview

    unfitted = ["", gr.update(visible=False), {}]
    preview_inputs = {family, preset, yaml_box, dataset, *components}
    preview_outputs = [preview_text, preview_grid, fit.note, fit.apply, fit.pending]
    preview_btn.click(previewer(False), preview_inputs, preview_outputs, api_visibility="private")
    prepare_btn.click(previewer(True), preview_inputs, preview_outputs, api_visibility="private")
    fit.wire(studio, family, dataset, yaml_box, fields, form_config, preview_inputs, [preview_text, preview_grid])

    def on_start(form: dict):
        fam = form[family]
        try:
            config = form_config(form)
            twin = identical_active_run(studio.manager.store, config)
            if twin and form[confirmed] != config_key(config):
                warning = (f"**Not started:** an identical run, **{twin['name']}**, is already {twin['status']}. "
                           "Press Start again to queue another one anyway.")
                return [warning, config_key(config), field_note(None, DATASET_INFO), *infos(fam)]
            name = studio.manager.start(config)
        except ConfigError as exc:
            listing = "\n".join(f"- `{f}`: {m}" for f, m in exc.errors)
            errors = dict(exc.errors)
            dataset_note = field_note(errors.get("data.dataset"), DATASET_INFO)
            return [f"**Not started; fix these fields:**\n{listing}", None, dataset_note, *infos(fam, errors)]
        except (ValueError, OSError) as exc:
            return [f"**Not started:** {exc}", None, field_note(None, DATASET_INFO), *infos(fam)]
        return [f"Queued **{name}**: follow it in the Runs tab.", None, field_note(None, DATASET_INFO), *infos(fam)]

    # Said at once: the first Start of a session checks the dataset and loads the engine, which takes seconds.
    start.click(lambda: "Checking the config and the dataset, then queueing the run…", None, status,
                api_visibility="private", show_progress="hidden", queue=False).then(
        on_start, {family, preset, yaml_box, dataset, confirmed, *components},
        [status, confirmed, dataset, *components], api_visibility="private", show_progress_on=status)
    sweep_form.build(studio, family, form_config, {family, preset, yaml_box, dataset, *components})


def field_note(problem: str | None, tip: str):
    """A field's note under its label: what is wrong with its value (marked in red), else its tip."""
    if problem:
        return gr.update(info=f"⚠️ {problem}", elem_classes=["field-error"])
    return gr.update(info=tip, elem_classes=[])


def field_problem(raw: dict, path: str) -> str | None:
    """What the config's check says about one field of `raw`, if anything."""
    try:
        validate_config(raw)
    except ConfigError as exc:
        return next((msg for field, msg in exc.errors if field == path), None)
    return None


def config_key(config: RunConfig) -> str:
    """A config as text without its name: two Starts of one form give the same key."""
    return config_to_yaml(config.model_copy(update={"name": None}))


def identical_active_run(store, config: RunConfig) -> dict | None:
    """A queued or running run of exactly this config, if there is one."""
    key = config_key(config)
    for row in store.list_runs():
        if row["status"] in ("queued", "running"):
            try:
                if config_key(validate_config(parse_yaml(row["config"]))) == key:
                    return row
            except ValueError:
                continue
    return None


def preview_markdown(p) -> str:
    lines = [f"**{p.num_images:,} images**" + ("" if p.prepared else " (counted, not yet decoded)"), f"Cache: {p.cache_state}."]
    if p.class_counts:
        lines.append("Classes: " + ", ".join(f"{name} ({n:,})" for name, n in p.class_counts.items()))
    lines += [f"Caption: *{c}*" for c in p.captions]
    if p.skipped:
        lines.append(f"**Skipped {len(p.skipped):,} file{'s' if len(p.skipped) > 1 else ''}:**")
        lines += [f"- `{name}`: {reason}" for name, reason in p.skipped[:10]]
        if len(p.skipped) > 10:
            lines.append(f"- … and {len(p.skipped) - 10:,} more")
    return "\n\n".join(lines)


def _rows(items, n):
    items = list(items)
    return [items[i:i + n] for i in range(0, len(items), n)]
