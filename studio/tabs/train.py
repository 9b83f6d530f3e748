"""Train tab: family, preset, dataset (built-in, folder, zip upload, hub id), a generated form, the YAML."""
from __future__ import annotations

import gradio as gr

from pipelines.config import ConfigError, validate_config
from pipelines.data import BUILTIN

from ..families import CONFIG_DIR, FAMILY_UIS
from ..forms import component_for, full_yaml, get_path, load_yaml, normalise, set_path
from ..uploads import UploadError, unpack_images_zip


def preset_yaml(preset: str) -> str:
    return full_yaml(load_yaml((CONFIG_DIR / preset).read_text()))


def build(studio) -> None:
    family_ui = FAMILY_UIS["ddpm"]
    start_yaml = preset_yaml(family_ui.default_preset)
    start_raw = load_yaml(start_yaml)
    with gr.Row():
        family = gr.Dropdown([(f.label, f.name) for f in FAMILY_UIS.values()], value=family_ui.name, label="Model family",
                             info="What kind of model to train.")
        preset = gr.Dropdown(family_ui.presets(), value=family_ui.default_preset, label="Preset",
                             info="A starting config from configs/; everything below can be changed.")
    with gr.Row():
        dataset = gr.Dropdown(list(BUILTIN), value=start_raw["data"]["dataset"], allow_custom_value=True, label="Dataset",
                              info="A built-in set, a folder of images on this machine, or a Hugging Face dataset id.", scale=3)
        upload = gr.File(label="…or upload a zip of images (subfolders become classes)", file_types=[".zip"], scale=2)
    fields: dict[str, gr.components.Component] = {}
    with gr.Group():
        for row_paths in _rows(family_ui.form_fields, 4):
            with gr.Row():
                for path in row_paths:
                    fields[path] = component_for(family_ui.name, path, get_path(start_raw, path))
    with gr.Accordion("Advanced: the full config (YAML)", open=False):
        yaml_box = gr.Code(start_yaml, language="yaml", label="config.yaml", interactive=True, lines=20)
    start = gr.Button("Start training", variant="primary")
    status = gr.Markdown(elem_id="train-status")

    paths = list(fields)
    field_components = [fields[p] for p in paths]

    def on_preset(name):
        text = preset_yaml(name)
        raw = load_yaml(text)
        return [text, raw["data"]["dataset"],
                *[gr.update(value=get_path(raw, p) or (0 if _optional_number(p) else get_path(raw, p)), info=_info(family_ui.name, p)) for p in paths]]

    preset.change(on_preset, preset, [yaml_box, dataset, *field_components], api_visibility="private")

    def on_family(name):
        ui = FAMILY_UIS[name]
        return gr.update(choices=ui.presets(), value=ui.default_preset)

    family.change(on_family, family, preset, api_visibility="private")

    def edit(path):
        def apply(text, value):
            try:
                raw = load_yaml(text)
            except ValueError:
                return gr.update()
            set_path(raw, path, normalise(family_ui.name, path, value))
            return full_yaml(raw)
        return apply

    for path, comp in fields.items():
        # One edit at a time, so quick successive edits do not overwrite each other's YAML.
        comp.input(edit(path), [yaml_box, comp], yaml_box, api_visibility="private", concurrency_id="yaml-edit",
                   concurrency_limit=1)
    dataset.input(edit("data.dataset"), [yaml_box, dataset], yaml_box, api_visibility="private")
    dataset.select(edit("data.dataset"), [yaml_box, dataset], yaml_box, api_visibility="private")

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

    def on_start(form: dict):
        """The YAML with the form's values on top (the form wins for the fields it shows)."""
        infos = [gr.update(info=_info(family_ui.name, p)) for p in paths]
        try:
            raw = load_yaml(form[yaml_box])
            set_path(raw, "data.dataset", form[dataset])
            for path, comp in fields.items():
                set_path(raw, path, normalise(family_ui.name, path, form[comp]))
            config = validate_config(raw)
        except ConfigError as exc:
            for field, msg in exc.errors:
                if field in paths:
                    infos[paths.index(field)] = gr.update(info=f"⚠️ {msg}")
            listing = "\n".join(f"- `{f}`: {m}" for f, m in exc.errors)
            return [f"**Not started; fix these fields:**\n{listing}", *infos]
        except ValueError as exc:
            return [f"**Not started:** {exc}", *infos]
        try:
            name = studio.manager.start(config)
        except (ValueError, OSError) as exc:
            return [f"**Not started:** {exc}", *infos]
        return [f"Queued **{name}**: follow it in the Runs tab.", *infos]

    start.click(on_start, {yaml_box, dataset, *field_components}, [status, *field_components], api_visibility="private")


def _info(family: str, path: str) -> str:
    from ..forms import field_info

    return field_info(family, path).description or ""


def _optional_number(path: str) -> bool:
    from ..forms import _base_type, field_info

    kind, optional = _base_type(field_info("ddpm", path).annotation)
    return optional and kind in (int, float)


def _rows(items, n):
    items = list(items)
    return [items[i:i + n] for i in range(0, len(items), n)]
