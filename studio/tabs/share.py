"""The Runs tab's sharing: where the run's trackers write, push a model to the Hugging Face Hub, a run as a zip
(export) and a zip as a run (import)."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import yaml

from pipelines.api import (
    HubError,
    PortableError,
    export_run,
    import_run,
    push_model,
    read_card,
    tracker_locations,
)


def build(studio, run: gr.Dropdown) -> None:
    store = studio.manager.store
    with gr.Accordion("Share: trackers, the Hugging Face Hub, export and import", open=False):
        trackers = gr.Markdown(elem_id="run-trackers")
        with gr.Row(equal_height=True):
            folder = gr.Dropdown(["best", "final"], value="best", label="Model folder", scale=1)
            repo = gr.Textbox(label="Hub repository", placeholder="user/name", scale=2, elem_id="push-repo",
                              info="Uses the token of `hf auth login` or $HF_TOKEN.")
            private = gr.Checkbox(label="private", value=True, scale=0)
            push_btn = gr.Button("Push to the Hub", scale=1, elem_id="push-run")
        push_status = gr.Markdown(elem_id="push-status")
        gr.Markdown(EXPORT_VS_DOWNLOAD, elem_id="export-vs-download")
        with gr.Row(equal_height=True):
            export_btn = gr.Button("Export this run (.zip)", scale=1, elem_id="export-run")
            exported = gr.File(label="run zip", interactive=False, scale=2)
            upload = gr.File(label="Import a run zip into this workspace", file_types=[".zip"], scale=2,
                             elem_id="import-run")
        share_status = gr.Markdown(elem_id="share-status")
    with gr.Accordion("Model card", open=False) as card_box:
        card = gr.Markdown(elem_id="model-card")

    def on_run(name):
        if not name or not store.exists(name):
            return ""
        found = tracker_locations(store, name)
        return ("Trackers: " + "; ".join(f"`{where}`" for where in found)) if found else \
            "No experiment trackers for this run (`training.log_with`: tensorboard, wandb, mlflow)."

    run.change(on_run, run, trackers, api_visibility="private", show_progress="hidden")

    def on_card(name):
        return model_card(store, name) if name and store.exists(name) else ""

    for event in (run.change, card_box.expand):  # expanded: read again, the run may have written it since
        event(on_card, run, card, api_visibility="private", show_progress="hidden")

    def on_push(name, which, repo_id, is_private):
        if not name:
            return "Pick a run first."
        path = Path(store.get_run(name)["folder"]) / which
        if not path.is_dir():
            return f"**Not pushed:** {name} has no {which}/ yet."
        try:
            url = push_model(path, repo_id.strip(), private=is_private)
        except HubError as exc:
            return f"**Not pushed:** {exc}"
        return f"Pushed {name}/{which}/ to [{repo_id.strip()}]({url})."

    push_btn.click(on_push, [run, folder, repo, private], push_status, api_visibility="private")

    def on_export(name):
        if not name:
            return None, "Pick a run first."
        try:
            out = export_run(store.get_run(name)["folder"], studio.workspace / "exports" / f"{name}.zip")
        except PortableError as exc:
            return None, f"**Not exported:** {exc}"
        return str(out), f"Exported {name}: config, log, best/ and final/, metrics and evaluations."

    export_btn.click(on_export, run, [exported, share_status], api_visibility="private")

    def on_import(file):
        if file is None:
            return gr.update()
        try:
            name = import_run(file, studio.workspace)
        except PortableError as exc:
            return f"**Not imported:** {exc}"
        return f"Imported as **{name}**: pick it above."

    upload.upload(on_import, upload, share_status, api_visibility="private")


EXPORT_VS_DOWNLOAD = ("**Export this run** zips the whole run (config, log, metrics, evaluations, best/ and final/) to "
                      "import into another studio with *Import* below. **Download final model** (under the charts) "
                      "is only the trained model, final/, as diffusers' `from_pretrained` loads it.")


def model_card(store, name: str) -> str:
    """The model card (README.md) of the run's best/, else final/, shown as Markdown; or why there is none yet."""
    folder = Path(store.get_run(name)["folder"])
    for which in ("best", "final"):
        if (folder / which / "README.md").is_file():
            try:
                _, body = read_card(folder / which)
            except (OSError, ValueError, yaml.YAMLError) as exc:  # a card edited by hand, say
                return f"**The model card of {which}/ cannot be read:** {exc}"
            # its images are files beside it, which the page does not serve (the samples show above anyway)
            body = "\n".join(line for line in body.splitlines() if not line.startswith("!["))
            return f"*{which}/README.md*\n\n{body}"
    return f"{name} has no model card yet: it is written with best/ and final/ (when the run saves them)."
