"""Named API endpoints (gradio_client): start, stop, resume, list_runs, run_metrics, run_evaluations, generate, upscale."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from pipelines.config import ConfigError

from .tabs.generate import run_generation


def register(studio) -> None:
    manager, store = studio.manager, studio.manager.store

    def start(config_yaml: str) -> dict:
        """Validate a run config (YAML) and queue it; returns {"name"} or {"errors": [[field, message], ...]}."""
        try:
            return {"name": manager.start(config_yaml)}
        except ConfigError as exc:
            return {"errors": [list(e) for e in exc.errors]}
        except ValueError as exc:
            return {"errors": [["config", str(exc)]]}

    def stop(name: str) -> str:
        """Ask a run to stop after its current step (it leaves a resumable checkpoint)."""
        return manager.stop(name)

    def resume(name: str) -> str:
        """Queue a stopped, failed or interrupted run to continue from its newest checkpoint."""
        return manager.resume(name)

    def list_runs() -> list[dict]:
        """Every run in the store with its status and progress."""
        manager.refresh()
        keep = ("name", "family", "dataset", "resolution", "status", "step", "total_steps", "epoch", "best_metric",
                "best_value", "error", "started_at", "ended_at", "folder")
        return [{k: r[k] for k in keep} for r in store.list_runs()]

    def run_metrics(name: str, since_step: int = -1) -> dict:
        """A run's logged metrics after `since_step`, as {metric: [[step, value], ...]}."""
        series: dict[str, list] = {}
        for r in store.metrics(name, since_step=int(since_step)):
            series.setdefault(r["name"], []).append([r["step"], r["value"]])
        return series

    def run_evaluations(name: str) -> list[dict]:
        """A run's FID/FD/KID evaluations, oldest first: during training (kind "training") and final ones."""
        from pipelines.metrics.extractors import metric_label

        return [{**{k: v for k, v in r.items() if k != "run_id"}, "metric": metric_label(r["extractor"])}
                for r in store.evaluations(name)]

    def generate(checkpoint: str, sampler: str = "dpm++", steps: int = 20, seed: int = 0, num: int = 4,
                 class_label: int | None = None, guidance: float = 1.0, truncation: float = 0.0) -> tuple[list[str], str]:
        """Sample images from a checkpoint folder (diffusion or GAN); returns PNG files and a line with the time taken."""
        images, took = run_generation(checkpoint, sampler, steps, seed, num, class_label, guidance, truncation)
        exports = studio.workspace / "exports"
        exports.mkdir(exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="generate-", dir=exports))
        paths = []
        for i, img in enumerate(images):
            img.save(folder / f"{i:03d}.png")
            paths.append(str(folder / f"{i:03d}.png"))
        return paths, took

    def upscale(images: list[str], model: str, outscale: float = 0.0, tile: int = 256, tile_pad: int = 16) -> dict:
        """Upscale image files with a super-resolution model (a run or checkpoint folder, or a .pth / .safetensors
        file); returns {"outputs": [PNG paths], "skipped": [[file, reason], ...], "model": label}."""
        from .tabs.upscale import run_upscale

        out_dir = Path(tempfile.mkdtemp(prefix="upscale-", dir=_exports()))
        results, failures, label = run_upscale(list(images), model, outscale, tile, tile_pad, out_dir)
        return {"outputs": [r.output for r in results], "skipped": [list(f) for f in failures], "model": label}

    def _exports() -> Path:
        (studio.workspace / "exports").mkdir(parents=True, exist_ok=True)
        return studio.workspace / "exports"

    for fn in (start, stop, resume, generate, upscale):
        gr.api(fn, api_name=fn.__name__)
    # Quick reads skip the queue: a poller costs the server one plain HTTP request each time.
    for fn in (list_runs, run_metrics, run_evaluations):
        gr.api(fn, api_name=fn.__name__, queue=False)
