"""The model families, and the one registry that knows them.

Each family lives in a folder of its own (`families/<name>/`): its config section, networks, training family, its
loaded-model class (recognise a saved folder, load it, sample, interpolate) and its Train form, described by a
`SPEC` in its `__init__.py`. Everything else (the loop, callbacks, store, checkpoints, data, metrics, samplers, the
studio) asks this registry. More families load from modules named in the `PIPELINES_FAMILIES` environment
variable (comma-separated), each with a `SPEC`: a family can live outside this package.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from ..config import register_config
from . import ddpm, gan, sr, t2i
from .spec import Chart, FamilySpec, Form

FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> None:
    FAMILIES[spec.name] = spec
    register_config(spec.name, spec.config)


def get(name: str) -> FamilySpec:
    if name not in FAMILIES:
        raise ValueError(f"family: {name!r} is not a model family; families: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def names(*kinds: str) -> tuple[str, ...]:
    """The families of these kinds ("images", "text", "upscaler"), or all."""
    return tuple(n for n, s in FAMILIES.items() if not kinds or s.kind in kinds)


def family_of(folder: str | Path) -> FamilySpec | None:
    """The family that wrote a saved model folder: by the family its studio.json records (as diffusers'
    model_index.json records a class), or, for folders without one (older, or from elsewhere), the first family
    whose model class recognises the folder's files."""
    folder = Path(folder)
    meta = folder / "studio.json"  # (checkpoints.META_FILE; read here without importing torch)
    recorded = json.loads(meta.read_text()).get("family") if meta.is_file() else None
    if recorded in FAMILIES:
        return FAMILIES[recorded]
    for spec in FAMILIES.values():
        if spec.model_class().recognises(folder):
            return spec
    return None


for _spec in (ddpm.SPEC, gan.SPEC, sr.SPEC, t2i.SPEC):
    register(_spec)
for _module in filter(None, (m.strip() for m in os.environ.get("PIPELINES_FAMILIES", "").split(","))):
    register(importlib.import_module(_module).SPEC)

__all__ = ["FAMILIES", "FamilySpec", "Form", "Chart", "register", "get", "names", "family_of"]
