"""Checkpoint layout, atomic folder writes, and loading a checkpoint for sampling or resuming.

A run folder holds `checkpoint-<step>/`, `best/` and `final/`. Each is a diffusers pipeline folder
(`model_index.json`, `unet/`, `scheduler/`) plus `studio.json` (what the studio needs to know about it);
`checkpoint-<step>/` adds `training_state.pt` for resuming. A folder only ever appears under its final
name once everything in it is written, and leaves it (pruning) by a rename before it is deleted: a killed
process leaves at most hidden `.tmp-*`, `.old-*` or `.pruned-*` folders, which no listing shows.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .store import process_alive

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
HIDDEN_RE = re.compile(r"^\.(tmp|old|pruned)-(.+)-(\d+)$")  # .<kind>-<folder name>-<pid of the writer>
META_FILE = "studio.json"
STATE_FILE = "training_state.pt"


def hidden(folder: Path, kind: str) -> Path:
    return folder.with_name(f".{kind}-{folder.name}-{os.getpid()}")


def exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the OS or the file
    system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # not Linux with glibc
        return False
    at_cwd, rename_exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0


def replace_dir(new: Path, target: Path) -> None:
    """Put the folder `new` in place of `target`. With an atomic swap a complete `target` is visible at every
    instant; without one it is missing between two renames, and `recover` brings the old copy back if the
    process dies there."""
    if target.exists() and exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # it holds the old copy now
        return
    old = hidden(target, "old")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temporary sibling folder; on success it replaces `target`."""
    target = Path(target)
    tmp = hidden(target, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def recover(run_dir: str | Path, force: bool = False) -> None:
    """Bring back a folder whose replacement a dead process left half done (`.old-best-<pid>` without `best/`).
    Called by every listing, so the app and the command line see it restored on their next read; a live
    writer's folders are left alone unless `force` (the run's own start, when no other writer exists)."""
    for p in Path(run_dir).glob(".old-*"):
        m = HIDDEN_RE.match(p.name)
        target = p.with_name(m.group(2)) if m else None
        if target is not None and not target.exists() and (force or not process_alive(int(m.group(3)))):
            try:
                os.replace(p, target)
            except OSError:  # another reader restored it first
                pass


def clean_partial(run_dir: str | Path) -> None:
    """At a run's start: restore interrupted replacements and remove what killed writes and prunes left."""
    recover(run_dir, force=True)
    for p in Path(run_dir).iterdir():
        if HIDDEN_RE.match(p.name):
            shutil.rmtree(p, ignore_errors=True)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """checkpoint-<step>/ folders, oldest first."""
    recover(run_dir)
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("checkpoint-*") if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def set_aside_newer(checkpoint: Path) -> list[Path]:
    """Resuming from an older checkpoint abandons the newer ones: rename them (kept, but never picked
    by --resume or pruned in place of the new ones)."""
    step = int(CHECKPOINT_RE.match(checkpoint.name).group(1))
    moved = []
    for p in list_checkpoints(checkpoint.parent):
        if int(p.name.split("-")[1]) > step:
            target = p.with_name(f"abandoned-{p.name}")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(p, target)
            moved.append(target)
    return moved


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> None:
    for p in list_checkpoints(run_dir)[:-keep_last]:
        gone = hidden(p, "pruned")
        os.replace(p, gone)  # out of every listing at once: a kill during the delete leaves only a hidden folder
        shutil.rmtree(gone, ignore_errors=True)


def resolve_resume(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its newest checkpoint)."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    if path.is_dir():
        ckpts = [p for p in list_checkpoints(path) if (p / STATE_FILE).exists()]
        if ckpts:
            return ckpts[-1]
        raise FileNotFoundError(f"--resume: {path} has no checkpoint-<step>/ folder to resume from")
    raise FileNotFoundError(f"--resume: {path} does not exist")


def save_training_state(folder: Path, state: dict) -> None:
    torch.save(state, folder / STATE_FILE)


def load_training_state(folder: Path) -> dict:
    # weights_only: a checkpoint from elsewhere cannot run code when loaded.
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)


def write_meta(folder: Path, meta: dict) -> None:
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class CheckpointInfo:
    """A checkpoint a person can pick: where it is and what it is."""
    path: Path
    kind: str  # checkpoint, best, final
    step: int
    meta: dict = field(default_factory=dict)


def run_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    run_dir = Path(run_dir)
    found = []
    for p in list_checkpoints(run_dir):
        meta = read_meta(p)
        found.append(CheckpointInfo(p, "checkpoint", meta.get("step", int(p.name.split("-")[1])), meta))
    for kind in ("best", "final"):
        p = run_dir / kind
        if (p / "model_index.json").exists() or (p / META_FILE).exists():
            meta = read_meta(p)
            found.append(CheckpointInfo(p, kind, meta.get("step", 0), meta))
    return found


def nonfinite_tensors(state, prefix: str = "") -> tuple[list[str], int]:
    """The names of the floating-point tensors of a nested state (dicts, lists) holding NaN or inf, and how many
    floating-point tensors there are."""
    if isinstance(state, torch.Tensor):
        if not state.is_floating_point():
            return [], 0
        return ([] if bool(torch.isfinite(state).all()) else [prefix]), 1
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    bad, total = [], 0
    for key, value in items:
        b, n = nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
        bad, total = bad + b, total + n
    return bad, total


def last_good_checkpoint(run_dir: str | Path) -> str:
    """Where a run that failed on non-finite values can go on from, in words (only finite weights are saved)."""
    ckpts = [p for p in list_checkpoints(run_dir) if (p / STATE_FILE).exists()]
    if ckpts:
        return f"the last good checkpoint is {ckpts[-1].name}/ (resume from it, e.g. with a lower learning rate)"
    return "no checkpoint was saved before it (nothing to resume from: start again, e.g. with a lower learning rate)"
