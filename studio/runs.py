"""RunManager: a queue of runs trained in background threads of the app, through the engine's API.

The UI never asks the manager how a run is doing: it reads the run store, which runs started from a
terminal write too. The manager only starts, stops, resumes, duplicates and deletes.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import checkpoints as ckpt
from pipelines.api import prepare_run, train
from pipelines.config import ConfigError, RunConfig, parse_yaml, validate_config
from pipelines.data import check_dataset
from pipelines.metrics.extractors import check_extractor
from pipelines.store import RunStore

log = logging.getLogger(__name__)

# A run whose heartbeat is older than this is no longer trained by anyone (its process died).
STALE_SECONDS = 30.0


@dataclass
class Job:
    name: str
    resume: bool = False
    stop: threading.Event = field(default_factory=threading.Event)


class RunManager:
    def __init__(self, workspace: str | Path, max_concurrent: int = 1):
        self.workspace = Path(workspace)
        self.store = RunStore(self.workspace)
        self.queue: queue.Queue[Job] = queue.Queue()
        self.active: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.recovered = self.store.mark_interrupted(stale_seconds=STALE_SECONDS)
        for row in self.store.list_runs():  # queued by an app that was killed before it started them
            if row["status"] == "queued":
                self.store.update_run(row["name"], status="interrupted", error="the app stopped before this run started")
        self.workers = [threading.Thread(target=self._work, name=f"run-worker-{i}", daemon=True) for i in range(max_concurrent)]
        for w in self.workers:
            w.start()

    # Actions ----------------------------------------------------------------------------------------

    def start(self, config: RunConfig | str | dict, name: str | None = None) -> str:
        """Validate (raises ConfigError naming the field), create the run as queued, and queue it."""
        if isinstance(config, str):
            config = parse_yaml(config) or {}
        if isinstance(config, dict):
            config = validate_config(config)
        try:
            check_dataset(config.data.dataset)
        except ValueError as exc:
            field, _, msg = str(exc).partition(": ")
            raise ConfigError([(field, msg)]) from None
        check_extractor(config)
        run_name, _ = prepare_run(config, self.workspace, name)
        self._enqueue(Job(run_name))
        return run_name

    def stop(self, name: str) -> str:
        row = self.store.get_run(name)
        with self.lock:
            job = self.active.get(name)
        if job is not None:
            job.stop.set()
        elif self.store.transition(name, ("queued",), "stopped"):
            return f"{name}: removed from the queue"
        elif row["status"] != "running":
            return f"{name} is {row['status']}, not running"
        self.store.request_stop(name)  # also reaches runs trained by another process
        return f"{name}: stopping after the current step"

    def resume(self, name: str) -> str:
        row = self.store.get_run(name)
        if not self.store.transition(name, ("completed", "failed", "stopped", "interrupted"), "queued"):
            return f"{name} is already {row['status']}"
        has_checkpoint = bool(ckpt.list_checkpoints(row["folder"]))
        self.store.update_run(name, error=None, stop_requested=0)
        self._enqueue(Job(name, resume=has_checkpoint))
        return f"{name}: queued to resume" + ("" if has_checkpoint else " (no checkpoint yet: it starts over)")

    def duplicate(self, name: str, edits: str | None = None) -> str:
        """A new run with the config of `name`, changed by the YAML mapping `edits` (same shape as the config)."""
        raw = parse_yaml(self.store.get_run(name)["config"])
        raw["name"] = None
        for section, values in (parse_yaml(edits) or {}).items() if edits else []:
            if isinstance(values, dict) and isinstance(raw.get(section), dict):
                raw[section].update(values)
            else:
                raw[section] = values
        return self.start(raw)

    def delete(self, name: str) -> str:
        row = self.store.get_run(name)
        if row["status"] in ("running", "queued") or self.is_active(name):
            raise ValueError(f"{name} is {row['status']}: stop it before deleting it")
        self.store.delete_run(name)
        folder = Path(row["folder"])
        if folder.resolve().parent == self.workspace.resolve():
            shutil.rmtree(folder, ignore_errors=True)
        return f"deleted {name}"

    def refresh(self) -> None:
        """Runs of dead processes (a terminal run killed, say) become interrupted."""
        self.store.mark_interrupted(stale_seconds=STALE_SECONDS)

    def is_active(self, name: str) -> bool:
        with self.lock:
            return name in self.active

    # Workers ----------------------------------------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        self.queue.put(job)

    def _work(self) -> None:
        while True:
            job = self.queue.get()
            row = self.store.get_run(job.name) if self.store.exists(job.name) else None
            # Claim it: a run stopped or deleted while it waited is skipped.
            if row is None or not self.store.transition(job.name, ("queued",), "running"):
                continue
            with self.lock:
                self.active[job.name] = job
            try:
                if job.resume:
                    train(resume=row["folder"], stop_event=job.stop, progress=False)
                else:
                    train(run_name=job.name, workspace=self.workspace, stop_event=job.stop, progress=False)
            except Exception as exc:  # recorded in the store and the run's log, unless it failed before training
                log.warning("run %s failed: %s", job.name, exc)
                if self.store.transition(job.name, ("running",), "failed"):
                    self.store.update_run(job.name, error=f"{type(exc).__name__}: {exc}")
            finally:
                with self.lock:
                    self.active.pop(job.name, None)
