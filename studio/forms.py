"""Form fields generated from the config models: type, default, description (as the tooltip) and bounds."""
from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel

from pipelines.config import CONFIG_CLASSES, config_to_yaml, parse_yaml, validate_config

QUALIFIED_SECTIONS = ("evaluation", "early_stopping")


def field_info(family: str, path: str):
    """The pydantic FieldInfo of a dotted path such as 'training.batch_size'."""
    cls: type[BaseModel] = CONFIG_CLASSES[family]
    *sections, leaf = path.split(".")
    for section in sections:
        cls = cls.model_fields[section].annotation
    return cls.model_fields[leaf]


def allowed_range(info) -> str:
    """A number field's bounds in words: "at least 8", "more than 0 and at most 1"."""
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    said = [f"{words[k]} {getattr(m, k):g}" for m in info.metadata for k in words if getattr(m, k, None) is not None]
    return " and ".join(said)


def _base_type(annotation):
    """int | None -> (int, True); Literal[...] stays as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def empty_meaning(description: str) -> str:
    """What an optional field's empty value means, from its description ("empty: no clipping" -> "no clipping")."""
    found = re.search(r"empty(?: \(0 in the app\))?:? (?:for )?([^;.)]+)", description or "")
    return found.group(1).strip() if found else "none"


def field_tip(family: str, path: str) -> str:
    """A field's description, and its allowed range when it has one ("at least 8"); for an optional number, what the
    0 its box shows for "empty" means ("0: all, otherwise at least 1")."""
    info = field_info(family, path)
    tip = info.description or ""
    kind, optional = _base_type(info.annotation)
    allowed = allowed_range(info) if kind in (int, float) else ""
    if allowed and optional:
        allowed = f"0: {empty_meaning(tip)}, otherwise {allowed}"
    return f"{tip.rstrip('.')}; {allowed}." if allowed else tip


def component_for(family: str, path: str, value: Any) -> gr.components.Component:
    info = field_info(family, path)
    section, leaf = path.split(".", 1)
    label = leaf.replace("_", " ")
    if section in QUALIFIED_SECTIONS:  # "every epochs" alone would not say what happens
        label = f"{section.replace('_', ' ')}: {label}"
    tip = field_tip(family, path)
    elem_id = "field-" + path.replace(".", "-").replace("_", "-")
    kind, optional = _base_type(info.annotation)
    if typing.get_origin(kind) is Literal:
        return gr.Dropdown(choices=list(typing.get_args(kind)), value=value, label=label, info=tip, elem_id=elem_id)
    if kind is bool:
        return gr.Checkbox(value=value, label=label, info=tip, elem_id=elem_id)
    if kind in (int, float):
        # No minimum/maximum on the box: Gradio would refuse an out-of-range value by marking every output of the
        # event "Error"; the config's check marks this field alone, with its range.
        if optional:  # a number box cannot be empty: 0 stands for "none"
            return gr.Number(value=value or 0, label=f"{label} (0: {empty_meaning(info.description)})", info=tip, precision=0 if kind is int else None,
                             elem_id=elem_id)
        return gr.Number(value=value, label=label, info=tip, precision=0 if kind is int else None, elem_id=elem_id)
    return gr.Textbox(value="" if value is None else str(value), label=label, info=tip, elem_id=elem_id)


def form_value(family: str, path: str, value):
    """A config value as its form field shows it (an optional number shows "none" as 0)."""
    kind, optional = _base_type(field_info(family, path).annotation)
    return 0 if value is None and optional and kind in (int, float) else value


def get_path(raw: dict, path: str):
    node = raw
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def set_path(raw: dict, path: str, value) -> None:
    *sections, leaf = path.split(".")
    node = raw
    for s in sections:
        node = node.setdefault(s, {})
    node[leaf] = value


def normalise(family: str, path: str, value):
    """A form value as the config wants it (gr.Number gives floats, an empty number is None)."""
    kind, optional = _base_type(field_info(family, path).annotation)
    if value in ("", None) or (optional and value == 0):
        return None if optional else value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def full_yaml(raw: dict) -> str:
    """Validated and complete (every default written out) when possible; otherwise as given."""
    try:
        return config_to_yaml(validate_config(raw))
    except ValueError:
        import yaml

        return yaml.safe_dump(raw, sort_keys=False)


def load_yaml(text: str) -> dict:
    raw = parse_yaml(text or "") or {}
    if not isinstance(raw, dict):
        raise ValueError("config: the YAML must be a mapping of sections (data, model, training, ...)")
    return raw
