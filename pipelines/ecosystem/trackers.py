"""Experiment trackers (TensorBoard, W&B, MLflow) through accelerate, in addition to the run store.

Everything a run records goes through its `RunStore`, so a `TrackedStore` that passes each record on to the
accelerator's trackers as well sees every metric at the store's cadence (the loss, learning rates, images/s and
each family's own values), every evaluation and every sample grid, without a second copy of that logic. The
`Trackers` callback starts the trackers with the config, says where each writes (the log and the store's
artifacts, kind "tracker"), logs the final evaluation (written to the store by another process's code path) and
closes them.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
from pathlib import Path

from ..config import ConfigError
from ..train.callbacks import Callback
from .notify import shareable_config

# Which importable module each tracker needs, and the package that provides it.
PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
}
ARTIFACT_KIND = "tracker"  # store artifacts of this kind: "<tracker>: <where it writes>"
MLFLOW_DB = "mlflow.db"  # MLflow's store in the workspace when MLFLOW_TRACKING_URI is not set
MLFLOW_ARTIFACTS = "mlartifacts"  # ...and the sample grids it logs, beside it


def check_trackers(config) -> None:
    """A ConfigError naming the package to install for each tracker in training.log_with that is not installed."""
    errors = []
    for name in config.training.log_with:
        modules, package = PACKAGES[name]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            errors.append(("training.log_with", f"{name} is not installed: pip install {package}"))
        elif name == "mlflow" and (user_mlflow_uri() or "sqlite:").startswith("sqlite:") \
                and not all(importlib.util.find_spec(m) is not None for m in ("sqlalchemy", "alembic")):
            # mlflow-skinny has no SQLite store of its own: a local store needs what full mlflow brings.
            errors.append(("training.log_with", ("mlflow's local SQLite store needs sqlalchemy and alembic: pip install "
                                                 "mlflow (or sqlalchemy alembic), or set MLFLOW_TRACKING_URI to a server")))
    if errors:
        raise ConfigError(errors)


# URIs this process chose itself: mlflow.set_tracking_uri exports them as MLFLOW_TRACKING_URI, where they must
# not pass for the user's choice in a later run of another workspace.
_workspace_uris: set[str] = set()


def user_mlflow_uri() -> str | None:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri if uri and uri not in _workspace_uris else None


def mlflow_uri(workspace: Path) -> str:
    """MLFLOW_TRACKING_URI when the user set it (a server, a database), else the workspace's own SQLite store, so
    that every run of a workspace is in one place and none lands in whatever folder the studio was started from."""
    return user_mlflow_uri() or f"sqlite:///{(workspace / MLFLOW_DB).resolve()}"


def mlflow_options(run_name: str, workspace: Path) -> dict:
    """accelerate's MLflowTracker arguments; with the workspace's store, grids go to <workspace>/mlartifacts/."""
    import mlflow

    users, uri = user_mlflow_uri(), mlflow_uri(workspace)
    if not users:
        _workspace_uris.add(uri)
    mlflow.set_tracking_uri(uri)  # process-wide (and exported to the environment): set again at every run's start
    if users:
        return {"run_name": run_name}  # the server (or the user's store) decides where artifacts go
    # Used when the experiment is created, i.e. by its first run; the default would be ./mlruns wherever we are.
    return {"run_name": run_name, "logging_dir": str((workspace / MLFLOW_ARTIFACTS).resolve())}


def accelerator_options(config, folder: Path) -> dict:
    """Keyword arguments for `Accelerator(...)`: the trackers, and <run>/trackers/ as their local folder."""
    if not config.training.log_with:
        return {}
    from accelerate.utils import ProjectConfiguration

    return {"log_with": list(config.training.log_with),
            "project_config": ProjectConfiguration(project_dir=str(folder), logging_dir=str(folder / "trackers"))}


def flat_config(config) -> dict:
    """The config as flat scalar values (trackers' hyperparameter tables take bool, str, int, float)."""
    out = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, (bool, int, float, str)):
            out[prefix] = value
        else:  # lists and None: as text, so that the table still shows them
            out[prefix] = str(value)

    walk("", shareable_config(config))
    return out


def location(tracker) -> str:
    """Where a started tracker writes, in words a person can follow."""
    if tracker.name == "tensorboard":
        return f"{tracker.logging_dir} (tensorboard --logdir {tracker.logging_dir})"
    if tracker.name == "wandb":
        run = tracker.run
        if run.offline:  # run.dir is <run folder>/files; the folder itself is what `wandb sync` takes
            folder = Path(run.dir).parent
            return f"{folder} (offline: wandb sync {folder} uploads it)"
        return run.url or run.dir
    if tracker.name == "mlflow":
        import mlflow

        uri, run = mlflow.get_tracking_uri(), mlflow.active_run()
        see = f"; mlflow ui --backend-store-uri {uri}" if uri.startswith(("sqlite:", "file:")) else ""
        return f"{uri} (run {run.info.run_id}{see})"
    return getattr(tracker, "logging_dir", "") or type(tracker).__name__


def read_png(path: str):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class TrackedStore:
    """The run store, with metrics, evaluations and sample images passed on to the accelerator's trackers too.
    Everything else goes to the store unchanged. A tracker that fails is logged once and left out after that:
    the run store, not a tracker, is what the run needs."""

    def __init__(self, store, accelerator, log: logging.Logger):
        self._store, self._accelerator, self._log = store, accelerator, log
        self._broken: set[str] = set()
        self._last_step = 0  # the highest step logged so far (W&B refuses to go back: see log_scalars)

    def __getattr__(self, name):
        return getattr(self._store, name)

    def _each(self, action: str, fn) -> None:
        if not self._accelerator.is_main_process:
            return
        for tracker in self._accelerator.trackers:
            if tracker.name in self._broken:
                continue
            try:
                fn(tracker)
            except Exception as exc:  # noqa: BLE001  a tracker's network or disk trouble never ends a run
                self._broken.add(tracker.name)
                self._log.warning("tracker %s failed to log %s and is left out from now on: %s: %s", tracker.name,
                                  action, type(exc).__name__, exc)

    def log_metrics(self, name: str, step: int, epoch: float, values: dict) -> None:
        self._store.log_metrics(name, step, epoch, values)
        scalars = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}
        scalars["epoch"] = float(epoch)
        self._each("metrics", lambda t: self.log_scalars(t, scalars, step))

    def log_scalars(self, tracker, scalars: dict, step: int) -> None:
        if tracker.name == "wandb" and step < self._last_step:
            # W&B drops a record with a step lower than one it has seen (the final evaluation is of best/, often
            # an earlier step): log it at the latest step, with the step it belongs to as a value of its own.
            prefix = next(iter(scalars)).rsplit("/", 1)[0]
            tracker.log({**scalars, f"{prefix}/step": step}, step=self._last_step)
        else:
            tracker.log(scalars, step=step)
        self._last_step = max(self._last_step, step)

    def log_evaluation(self, name: str, **values) -> None:
        self._store.log_evaluation(name, **values)
        self.log_evaluation_to_trackers(values)

    def log_evaluation_to_trackers(self, values: dict) -> None:
        # The extractor and split are in the name: distances are comparable only at the same ones.
        prefix = f"eval/{values['kind']}/{values['extractor']}_{values['split']}"
        scalars = {f"{prefix}/fd": values["fd"], f"{prefix}/kid": values["kid"],
                   f"{prefix}/num_samples": values["num_samples"]}
        self._each("an evaluation", lambda t: self.log_scalars(t, scalars, values["step"]))

    def add_artifact(self, name: str, kind: str, path: str, step: int) -> None:
        self._store.add_artifact(name, kind, path, step)
        if kind == "samples" and str(path).endswith(".png"):
            self._each("a sample grid", lambda t: log_image(t, "samples", read_png(path), step))


def log_image(tracker, key: str, image, step: int) -> None:
    """One H x W x C image to a tracker, in the form each one takes."""
    if tracker.name == "tensorboard":
        tracker.log_images({key: image[None]}, step=step, dataformats="NHWC")
    elif tracker.name == "mlflow":  # accelerate's MLflow tracker has no log_images: use the library's own
        import mlflow

        mlflow.log_image(image, key=key, step=step)
    elif hasattr(tracker, "log_images"):
        tracker.log_images({key: [image]}, step=step)


class Trackers(Callback):
    """Starts the trackers with the config, records where they write, logs the final evaluation, closes them."""

    def __init__(self, store: TrackedStore, config, run_name: str, log: logging.Logger):
        self.store, self.config, self.run_name, self.log = store, config, run_name, log
        self.final_logged: set[int] = set()

    def on_start(self, trainer) -> None:
        acc, folder = trainer.accelerator, trainer.run.folder
        (folder / "trackers").mkdir(exist_ok=True)  # W&B wants its local folder to exist
        init_kwargs = {"wandb": {"name": self.run_name, "dir": str(folder / "trackers")}}
        if "mlflow" in self.config.training.log_with:
            init_kwargs["mlflow"] = mlflow_options(self.run_name, folder.parent)
        try:
            acc.init_trackers(self.config.training.tracker_project, config=flat_config(self.config),
                              init_kwargs=init_kwargs)
        except Exception as exc:  # before any step: the run fails saying which tracker, as a missing package does
            self.end_trackers(acc)
            library = type(exc).__module__.split(".")[0]
            which = library if library in self.config.training.log_with else "a tracker"
            hint = " (or WANDB_MODE=offline: the run is kept in its folder, for wandb sync)" if which == "wandb" else ""
            raise ConfigError([("training.log_with", f"{which} could not start: {type(exc).__name__}: {exc}{hint}")]) \
                from exc
        if not acc.is_main_process:
            return
        have = {a["path"] for a in self.store.artifacts(self.run_name, ARTIFACT_KIND)}
        for tracker in acc.trackers:
            where = f"{tracker.name}: {location(tracker)}"
            self.log.info("tracker %s", where)
            if where not in have:  # a resume writes to the same place
                self.store.add_artifact(self.run_name, ARTIFACT_KIND, where, 0)
        self.final_logged = {e["id"] for e in self.store.evaluations(self.run_name, "final")}

    def on_end(self, trainer) -> None:
        if trainer.is_main:  # the final evaluation reaches the store through a store of its own
            for e in self.store.evaluations(self.run_name, "final"):
                if e["id"] not in self.final_logged:
                    self.store.log_evaluation_to_trackers(e)
        trainer.accelerator.end_training()

    def on_exception(self, trainer, exc: BaseException) -> None:
        self.end_trackers(trainer.accelerator)  # flush what was logged before the failure
        trainer.accelerator.state.destroy_process_group()  # the rest of accelerator.end_training()

    def end_trackers(self, accelerator) -> None:
        for tracker in accelerator.trackers:  # one by one: a tracker that never started cannot finish
            try:
                tracker.finish()
            except Exception as exc:  # noqa: BLE001  the run's own failure is the one to report
                self.log.warning("tracker %s did not close: %s: %s", tracker.name, type(exc).__name__, exc)


def tracker_locations(store, run_name: str) -> list[str]:
    """Where a run's trackers write ("tensorboard: /path ..."), for the Runs tab."""
    return [a["path"] for a in store.artifacts(run_name, ARTIFACT_KIND)]


def tracked(run, accelerator):
    """The run handle, its store passing records on to the accelerator's trackers when it has any."""
    if not accelerator.log_with:
        return run
    return dataclasses.replace(run, store=TrackedStore(run.store, accelerator, run.log))


def callbacks(run, config) -> list:
    return [Trackers(run.store, config, run.name, run.log)] if config.training.log_with else []
