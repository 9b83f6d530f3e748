"""Named API endpoints (gradio_client): start, stop, resume, list_runs, run_metrics, run_evaluations, generate, upscale,
compare, interpolate, chain."""
from __future__ import annotations

import json

import gradio as gr

from pipelines.api import SampleRequest, metric_label
from pipelines.config import ConfigError

from .exports import new_folder, served
from .files import refuse_store_files
from .generation import run_generation

LIST_FIELDS = ("name", "family", "dataset", "resolution", "status", "step", "total_steps", "epoch", "best_metric",
               "best_value", "error", "started_at", "ended_at", "folder")
READ_PATHS = tuple(f"/{route}/{name}" for route in ("run", "api") for name in ("list_runs", "run_metrics", "run_evaluations"))


class SharedReadSession:
    """ASGI middleware: a call of a read endpoint without a session hash gets a shared one. For each call without one
    Gradio builds a whole session (the config of every component of the page: about 50 ms of CPU here, against 2 ms
    with one), so a script polling with plain HTTP would cost the app, and the runs training beside it, that much."""

    SESSION = "studio-read-endpoints"

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "").rstrip("/")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.endswith(READ_PATHS):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more and len(body) <= 65536:  # read endpoints take a name and a step; larger bodies go on untouched
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if not more:
            try:
                data = json.loads(body)
                if isinstance(data, dict) and not data.get("session_hash"):
                    body = json.dumps({**data, "session_hash": self.SESSION}).encode()
            except ValueError:
                pass
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}

        return await self.app(scope, replay, send)


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

    def resume(name: str, more_minutes: float = 0) -> str:
        """Queue a stopped, failed or interrupted run to continue from its newest checkpoint; a completed one (or any, with
        `more_minutes` > 0) for that many more minutes."""
        try:
            return manager.resume(name, more_minutes=more_minutes or None)
        except ValueError as exc:  # a completed run without more minutes; a bad number
            return str(exc)

    # The read endpoints are pollers' (browser tabs, scripts): one cheap store query each, outside the queue.
    def list_runs() -> list[dict]:
        """Every run in the store with its status and progress (a run whose process died shows as interrupted)."""
        return [{k: r[k] for k in LIST_FIELDS} for r in store.list_runs(LIST_FIELDS)]

    def run_metrics(name: str, since_step: int = -1) -> dict:
        """A run's logged metrics after `since_step` (poll with the last step you have), as {metric: [[step, value], ...]}."""
        series: dict[str, list] = {}
        for r in store.metrics(name, since_step=int(since_step)):
            series.setdefault(r["name"], []).append([r["step"], r["value"]])
        return series

    def run_evaluations(name: str) -> list[dict]:
        """A run's FID/FD/KID evaluations, oldest first: during training (kind "training") and final ones."""
        return [{**{k: v for k, v in r.items() if k != "run_id"}, "metric": metric_label(r["extractor"])}
                for r in store.evaluations(name)]

    def generate(checkpoint: str, sampler: str = "dpm++", steps: int = 20, seed: int = 0, num: int = 4,
                 class_label: int | None = None, guidance: float = 1.0, truncation: float = 0.0) -> tuple[list[str], str]:
        """Sample images from a checkpoint folder (diffusion or GAN); returns PNG files and a line with the time taken."""
        asked = SampleRequest.of(sampler=sampler, steps=steps, seed=seed, num=num, class_label=class_label,
                                 guidance=guidance, truncation=truncation)
        images, took = run_generation(checkpoint, asked)
        folder = new_folder(studio.workspace, "generate")
        paths = []
        for i, img in enumerate(images):
            img.save(folder / f"{i:03d}.png")
            paths.append(str(folder / f"{i:03d}.png"))
        return served(paths), took

    def upscale(images: list[str | dict], model: str, outscale: float = 0.0, tile: int = 256, tile_pad: int = 16) -> dict:
        """Upscale image files (paths on the server, or files sent with gradio_client.handle_file) with a
        super-resolution model (a run or checkpoint folder, or a .pth / .safetensors file); returns {"outputs": [PNG
        files], "skipped": [[file, reason], ...], "model": label}."""
        from .tabs.upscale import run_upscale

        files = [f.get("path", "") if isinstance(f, dict) else f for f in images]  # an upload arrives as FileData
        try:
            refuse_store_files([*files, model], studio.workspace)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        out_dir = new_folder(studio.workspace, "upscale")
        results, failures, label = run_upscale(files, model, outscale, tile, tile_pad, out_dir)
        return {"outputs": served([r.output for r in results]), "skipped": [list(f) for f in failures], "model": label}

    def compare(checkpoints: list[str], prompt: str = "", sampler: str = "dpm++", steps: int = 20, seed: int = 0,
                num: int = 4, guidance: float = 3.0, negative_prompt: str = "", class_label: int = -1,
                truncation: float = 0.0) -> dict:
        """The same seeds from 2 to 8 checkpoints (any generating family; the prompt goes to text-to-image ones);
        returns {"grid": PNG at a common size, "native_grid": PNG at native sizes, "columns": [{checkpoint, kind,
        step, resolution, score, seconds}]}."""
        from .tabs.compare import run_compare

        asked = SampleRequest.of(prompt=prompt, negative_prompt=negative_prompt, sampler=sampler, steps=steps, seed=seed,
                                 num=num, class_label=class_label, guidance=guidance, truncation=truncation)
        result = run_compare(list(checkpoints), asked, store, new_folder(studio.workspace, "compare"))
        return {"grid": served(result["grid"]), "native_grid": served(result["native_grid"]), "columns": result["columns"]}

    def interpolate(checkpoint: str, between: str = "seeds", seed_a: int = 0, seed_b: int = 1, prompt_a: str = "",
                    prompt_b: str = "", frames: int = 8, steps: int = 50, guidance: float = 3.0, video: str = "gif",
                    class_label: int = -1, truncation: float = 0.0) -> dict:
        """Frames between two seeds (`between` "seeds") or two prompts ("prompts", text-to-image); `video` "gif" or
        "mp4"; returns {"strip": PNG, "animation": GIF or MP4, "note"}."""
        from .tabs.interpolate import PROMPTS, SEEDS, run_interpolation

        if between not in ("seeds", "prompts") or video.lower() not in ("gif", "mp4"):
            raise gr.Error("between: 'seeds' or 'prompts'; video: 'gif' or 'mp4'")
        asked = SampleRequest.of(seed=seed_a, prompt=prompt_a, steps=steps, class_label=class_label, guidance=guidance,
                                 truncation=truncation)
        result = run_interpolation(checkpoint, PROMPTS if between == "prompts" else SEEDS, asked, seed_b, prompt_b, frames,
                                   video.upper(), new_folder(studio.workspace, "interpolate"))
        return {"strip": served(result["strip"]), "animation": served(result["download"]), "note": result["note"]}

    def chain(generator: str, upscaler: str, prompt: str = "", num: int = 4, seed: int = 0, passes: int = 1,
              unsharp: float = 0.0, gamma: float = 1.0, steps: int = 20, guidance: float = 3.0,
              negative_prompt: str = "", sampler: str = "dpm++") -> dict:
        """Generate at low resolution, upscale (`passes` 1 or 2), post-process; returns {"low", "upscaled": [PNG
        paths], "comparison": PNG (low-res | bicubic | upscaled), "zip", "seconds": {stage: s}, "note"}."""
        from .tabs.chain import run_chain

        asked = SampleRequest.of(prompt=prompt, negative_prompt=negative_prompt, num=num, seed=seed, sampler=sampler,
                                 steps=steps, guidance=guidance)
        result = run_chain(generator, upscaler, asked, passes, unsharp, gamma, new_folder(studio.workspace, "chain"))
        return {**{k: served(result[k]) for k in ("low", "upscaled", "comparison", "zip")},
                **{k: result[k] for k in ("seconds", "note")}}

    for fn in (start, stop, resume, generate, upscale, compare, interpolate, chain):
        gr.api(fn, api_name=fn.__name__)
    # Quick reads skip the queue (no event, no SSE stream): POST /gradio_api/run/list_runs {"data": []} is one plain
    # request. gradio_client (and /gradio_api/call/...) always joins the queue: there they are answered at once.
    for fn in (list_runs, run_metrics, run_evaluations):
        gr.api(answered_on_join(fn), api_name=fn.__name__, queue=False, concurrency_limit=None)


class AlwaysFresh:
    """The `cache` of a read endpoint: Gradio's queue answers a call of a function that has a `cache` (gr.cache) when
    the call joins, without waiting for a turn in the queue, unless the function raises CacheMissError; these
    functions never do. So a read through /queue/join costs one store query and the answer's message on its stream,
    not an event in the queue (measured by bench/ui_overhead.py: seconds at the 95th percentile under load, before).
    Nothing is stored: every call reads the store afresh. Should Gradio stop looking for `cache`, calls take the
    queue again: slower, never wrong."""

    def clear(self) -> None:  # what Gradio may call on a cache
        pass


def answered_on_join(fn):
    fn.cache = AlwaysFresh()
    return fn
