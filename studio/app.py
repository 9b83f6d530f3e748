"""build_app(): the studio's tabs over one RunManager. Adding a tab is one module in studio/tabs and one line here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from . import api
from .choices import CheckpointLists
from .runs import RunManager
from .tabs import chain, compare, generate, interpolate, prompt, runs, sweeps, train, upscale

TABS = [("Train", train.build), ("Runs", runs.build), ("Generate", generate.build), ("Prompt", prompt.build),
        ("Compare", compare.build), ("Interpolate", interpolate.build), ("Upscale", upscale.build), ("Chain", chain.build)]

CSS = """
#runs-table { max-height: 320px; overflow: auto; }
.field-error .info-text { color: #dc2626; font-weight: 600; }  /* a Train field whose value is refused */
.run-progress { margin: 4px 0; }
#chain-gallery img, #compare-native img { image-rendering: pixelated; }  /* tiny images stay crisp when enlarged */
/* Compare's columns: side by side, headers wrapping inside their column (the full name on hover) */
.compare-columns { display: flex; gap: 12px; align-items: flex-start; overflow-x: auto; padding: 30px 8px 8px; }
.compare-column { flex: none; }
.compare-column img { display: block; margin: 0 auto 4px; max-width: none; image-rendering: pixelated; }
.compare-header { font-size: 13px; line-height: 1.3; overflow-wrap: anywhere; margin-bottom: 6px; cursor: help; }
"""


@dataclass
class Studio:
    manager: RunManager
    workspace: Path
    lists: CheckpointLists  # the use tabs' checkpoint lists, filled from the store


def build_app(workspace: str | Path = "checkpoints", max_concurrent_runs: int = 1,
              threads_per_run: int | None = None) -> tuple[gr.Blocks, Studio]:
    workspace = Path(workspace)
    manager = RunManager(workspace, max_concurrent_runs, threads=threads_per_run)
    studio = Studio(manager, workspace, CheckpointLists(manager.store))
    with gr.Blocks(title="Generative image studio") as demo:
        gr.Markdown("## Generative image studio\nTrain small image generators on your data, watch them learn, and use them.")
        if studio.manager.recovered:
            gr.Markdown(f"Runs interrupted when the app last stopped: **{', '.join(studio.manager.recovered)}**. "
                        "Open them in the Runs tab to resume.")
        built, opened = {}, []
        with gr.Tabs() as tabs:
            for label, build in TABS:
                with gr.Tab(label, id=label.lower()) as tab:
                    built[label] = build(studio)
                opened.append(tab)
        studio.lists.wire(demo, opened)
        send, picked = built["Prompt"]
        send.click(lambda path: ([path] if path else gr.update(), gr.Tabs(selected="upscale")), picked,
                   [built["Upscale"], tabs], api_visibility="private")
        send_low, send_upscaled, chained = built["Chain"]
        for button, key in ((send_low, "low"), (send_upscaled, "upscaled")):
            button.click(lambda made, key=key: (made[key] or gr.update(), gr.Tabs(selected="upscale")), chained,
                         [built["Upscale"], tabs], api_visibility="private")
        sweeps.connect_compare(demo, tabs, studio)
        api.register(studio)
    return demo, studio
