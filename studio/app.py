"""build_app(): the studio's tabs over one RunManager. Adding a tab is one module in studio/tabs and one line here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from . import api
from .runs import RunManager
from .tabs import chain, compare, generate, interpolate, prompt, runs, sweeps, train, upscale

TABS = [("Train", train.build), ("Runs", runs.build), ("Generate", generate.build), ("Prompt", prompt.build),
        ("Compare", compare.build), ("Interpolate", interpolate.build), ("Upscale", upscale.build), ("Chain", chain.build)]

CSS = """
#runs-table { max-height: 320px; overflow: auto; }
.run-progress { margin: 4px 0; }
#chain-gallery img, #compare-native img { image-rendering: pixelated; }  /* tiny images stay crisp when enlarged */
"""


@dataclass
class Studio:
    manager: RunManager
    workspace: Path


def build_app(workspace: str | Path = "checkpoints", max_concurrent_runs: int = 1,
              threads_per_run: int | None = None) -> tuple[gr.Blocks, Studio]:
    workspace = Path(workspace)
    studio = Studio(RunManager(workspace, max_concurrent_runs, threads=threads_per_run), workspace)
    with gr.Blocks(title="Generative image studio") as demo:
        gr.Markdown("## Generative image studio\nTrain small image generators on your data, watch them learn, and use them.")
        if studio.manager.recovered:
            gr.Markdown(f"Runs interrupted when the app last stopped: **{', '.join(studio.manager.recovered)}**. "
                        "Open them in the Runs tab to resume.")
        built = {}
        with gr.Tabs() as tabs:
            for label, build in TABS:
                with gr.Tab(label, id=label.lower()):
                    built[label] = build(studio)
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
