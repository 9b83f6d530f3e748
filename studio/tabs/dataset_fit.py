"""Train tab: the form follows the dataset. When a folder is picked (or uploaded, or previewed) whose images have other
channels or a smaller size than the form trains at, a note under the dataset says so and "Use these" sets the fields.
A preview of another dataset, or of other data fields, is cleared rather than left standing."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from pipelines.api import BUILTIN, propose_data
from pipelines.config import ConfigError

from ..forms import full_yaml, load_yaml, set_path

FITTED = ("data.channels", "data.image_size")  # the fields a proposal may set


class DatasetFit:
    def __init__(self):
        """The note and its button, placed where this is made (under the dataset row)."""
        with gr.Row(equal_height=True):
            self.note = gr.Markdown(elem_id="dataset-proposal")
            self.apply = gr.Button("Use these", size="sm", scale=0, min_width=110, visible=False,
                                   elem_id="apply-proposal")
        self.pending = gr.State({})  # the picked family's proposed {field: value}

    def shown(self, proposal, fam: str, fields) -> list:
        """[note, apply button, pending] for a Proposal, limited to the fields the family's form has."""
        mine = proposal.only({p for f, p in fields if f == fam})
        if not mine.changes:
            return ["", gr.update(visible=False), {}]
        said = "; ".join(mine.reasons.values())
        values = ", ".join(f"{k.removeprefix('data.').replace('_', ' ')} {v}" for k, v in mine.changes.items())
        return [f"⚠️ **This dataset fits other settings:** {said}. Proposed: **{values}**.",
                gr.update(visible=True), mine.changes]

    def wire(self, studio, family, dataset, yaml_box, fields: dict, form_config, form_inputs, preview_outputs) -> None:
        targets = [(key, comp) for key, comp in fields.items() if key[1] in FITTED]
        cleared = ["", None]  # the preview's text and grid

        def check(form: dict):
            """On a new dataset (or family): a local folder's images are looked at."""
            name = (form[dataset] or "").strip()
            if not name or name in BUILTIN or not Path(name).expanduser().is_dir():
                return ["", gr.update(visible=False), {}]
            try:
                cfg = form_config(form).data
                proposal = propose_data(cfg, studio.workspace)
            except (ConfigError, ValueError, OSError):  # the preview and Start say what is wrong
                return ["", gr.update(visible=False), {}]
            return self.shown(proposal, form[family], fields)

        for event in (dataset.change, family.change):
            # the old preview goes at once (outside the queue), before a new one can be asked for
            event(lambda: cleared, None, preview_outputs, api_visibility="private", show_progress="hidden", queue=False)
            event(check, form_inputs, [self.note, self.apply, self.pending], api_visibility="private",
                  show_progress="hidden")

        def apply(fam, text, changes):
            """The proposal into the picked family's fields and the YAML; the preview, now stale, goes."""
            try:
                raw = load_yaml(text)
            except ValueError:
                raw = None
            if raw is not None:
                for path, value in changes.items():
                    set_path(raw, path, value)
            updates = [gr.update(value=changes[path]) if f == fam and path in changes else gr.update()
                       for (f, path), _ in targets]
            done = ", ".join(f"{k.removeprefix('data.').replace('_', ' ')} {v}" for k, v in changes.items())
            return [full_yaml(raw) if raw is not None else gr.update(), *updates,
                    f"Set {done}." if done else "", gr.update(visible=False), {}, *cleared]

        self.apply.click(apply, [family, yaml_box, self.pending],
                         [yaml_box, *[c for _, c in targets], self.note, self.apply, self.pending, *preview_outputs],
                         api_visibility="private", concurrency_id="yaml-edit", concurrency_limit=1)
        for (_, path), comp in fields.items():  # the data fields typed by hand: the preview shows other data now
            if path.startswith("data."):
                comp.input(lambda: cleared, None, preview_outputs, api_visibility="private", show_progress="hidden")
