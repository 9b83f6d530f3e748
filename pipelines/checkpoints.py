"""Checkpoint layout, atomic folder writes, and loading a checkpoint for sampling or resuming.

A run folder holds `checkpoint-<step>/`, `best/` and `final/`. Each is a diffusers pipeline folder
(`model_index.json`, `unet/`, `scheduler/`) plus `studio.json` (what the studio needs to know about it);
`checkpoint-<step>/` adds `training_state.pt` for resuming. A folder only ever appears under its final
name once everything in it is written: a killed process leaves at most a `.tmp-*` folder, which is ignored.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
META_FILE = "studio.json"
STATE_FILE = "training_state.pt"


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temporary sibling folder; on success it replaces `target` in one rename."""
    target = Path(target)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.parent / f".old-{target.name}-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def clean_partial(run_dir: str | Path) -> None:
    """Remove leftovers of writes that a killed process never finished."""
    for p in Path(run_dir).glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in Path(run_dir).glob(".old-*"):
        name = p.name.split("-", 1)[1].rsplit("-", 1)[0]
        if not (p.parent / name).exists():  # killed between the two renames: the old copy is the good one
            os.replace(p, p.parent / name)
        else:
            shutil.rmtree(p, ignore_errors=True)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """checkpoint-<step>/ folders, oldest first."""
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
        shutil.rmtree(p, ignore_errors=True)


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
