"""Loading a diffusers component from a folder, a pipeline folder holding it, or a hub id (or a hub pipeline);
and tensors computed once and cached on disk (caption embeddings, latents), keyed by the model's weights."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def looks_local(name: str) -> bool:
    """A name written as a path (not a hub id such as `owner/repo`)."""
    return name.startswith(("/", "~", ".")) or name.count("/") > 1 or "\\" in name


def load_component(cls, name: str, subfolder: str, field: str, **kwargs):
    """`cls.from_pretrained` on `name` (or its `subfolder`); a ValueError naming `field` when nothing loads."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        candidates = [(folder / subfolder if (folder / subfolder).is_dir() else folder, None)]
    elif looks_local(name):
        raise ValueError(f"{field}: no such folder: {name}")
    else:
        candidates = [(name, subfolder), (name, None)]
    problem = "not found"
    for where, sub in candidates:
        try:
            return cls.from_pretrained(where, subfolder=sub, **kwargs)
        except (OSError, ValueError) as exc:
            problem = str(exc).splitlines()[0]
    raise ValueError(f"{field}: cannot load a {cls.__name__} from {name!r} ({problem})")


def weights_fingerprint(module: torch.nn.Module, *facts) -> str:
    """A short digest of a module's weights (a sum per tensor) and other JSON-able `facts`: the key of files
    cached for a model, so that a folder whose model changed gets new ones."""
    weights = [round(float(p.detach().float().sum()), 4) for p in module.parameters()]
    return hashlib.sha256(json.dumps([weights, *facts], sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_tensors(path: Path | None, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`compute()`, or what an earlier call saved at `path`: a folder of one .npy file per tensor, written under a
    temporary name and renamed when complete, read back as memory maps (their pages stay on disk until used).
    None: no cache."""
    if path is not None and (path / "complete").exists():
        return {f.stem: torch.from_numpy(np.load(f, mmap_mode="c")) for f in sorted(path.glob("*.npy"))}
    tensors = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")  # several processes may fill it at once
        tmp.mkdir()
        for name, tensor in tensors.items():
            np.save(tmp / f"{name}.npy", tensor.contiguous().numpy())
        (tmp / "complete").touch()
        try:
            os.replace(tmp, path)
        except OSError:  # filled by another process meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    return tensors
