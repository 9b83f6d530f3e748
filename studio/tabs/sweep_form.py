"""Train tab, "Sweep: a grid of runs": up to three of the picked family's form fields, each with a list of values; the
form above is the base config. Every combination is checked before anything is queued; the runs are queued through
the RunManager like any Start (so its concurrency limit holds) and grouped under one sweep name."""
from __future__ import annotations

import gradio as gr

from pipelines.api import (
    FAMILIES,
    MAX_SWEEP_FIELDS,
    check_dataset,
    check_extractor,
    parse_sweep,
    plan_sweep,
    queue_sweep,
)
from pipelines.config import ConfigError

DEFAULT_FIELDS = ("training.learning_rate", "training.batch_size")  # what is swept most often; the values are left empty


def build(studio, family: gr.Dropdown, form_config, form_inputs: set) -> None:
    """`form_config(form)`: the Train form's config (as its Start builds it) from the values of `form_inputs`."""
    first = next(iter(FAMILIES.values()))
    with gr.Accordion("Sweep: a grid of runs", open=False):
        gr.Markdown("Train every combination of up to three fields' values, with the rest of the form above as the "
                    "base. Values are separated by commas (`1e-4, 2e-4`); the runs are named after them and queued "
                    "like any other run. Compare them in the Runs tab under **Compare runs / sweeps**.")
        keys, values = [], []
        for i in range(MAX_SWEEP_FIELDS):
            with gr.Row():
                default = DEFAULT_FIELDS[i] if i < len(DEFAULT_FIELDS) else None
                keys.append(gr.Dropdown(_fields(first.name), value=default, label=f"Field {i + 1}", scale=2,
                                        elem_id=f"sweep-field-{i + 1}"))
                values.append(gr.Textbox(label="Values", placeholder="e.g. 5e-5, 1e-4, 2e-4", scale=3,
                                         elem_id=f"sweep-values-{i + 1}"))
        with gr.Row():
            sample = gr.Number(0, precision=0, minimum=0, label="Sample limit", elem_id="sweep-sample",
                               info="Train this many combinations drawn at random (0: the whole grid).")
            seed = gr.Number(0, precision=0, label="Sample seed", info="Which combinations the sample draws.")
            start = gr.Button("Start sweep", variant="primary", elem_id="start-sweep")
        status = gr.Markdown(elem_id="sweep-status")

    def on_family(fam):
        fields = _fields(fam)
        return [gr.update(choices=fields, value=d if d in fields else None)
                for d in (*DEFAULT_FIELDS, *[None] * MAX_SWEEP_FIELDS)[:MAX_SWEEP_FIELDS]]

    family.change(on_family, family, keys, api_visibility="private")

    def on_start(form: dict) -> str:
        specs = [f"{form[k]}={form[v]}" for k, v in zip(keys, values) if form[k] and str(form[v] or "").strip()]
        try:
            if not specs:
                raise ConfigError([("sweep", "pick a field and type its values (e.g. 1e-4, 2e-4)")])
            sampled = int(form[sample] or 0) or None
            plans = plan_sweep(form_config(form), parse_sweep(specs), sampled, int(form[seed] or 0))
            for plan in plans:  # the same checks as Start, for every run before any is queued
                check_dataset(plan.config.data.dataset)
                check_extractor(plan.config)
            name, runs = queue_sweep(studio.manager.store, plans, studio.manager.start)
        except ConfigError as exc:
            listing = "\n".join(f"- `{f}`: {m}" for f, m in exc.errors)
            return f"**Sweep not started (nothing was queued); fix these values:**\n{listing}"
        except ValueError as exc:
            return f"**Sweep not started (nothing was queued):** {exc}"
        return (f"Queued sweep **{name}**: {len(runs)} runs ({', '.join(runs)}). They train "
                f"{len(studio.manager.workers)} at a time; compare them in the Runs tab under *Compare runs / sweeps*.")

    start.click(on_start, {*form_inputs, *keys, *values, sample, seed}, status, api_visibility="private")


def _fields(family: str) -> list[str]:
    return list(FAMILIES[family].form.all_fields)
