"""What the use tabs offer: their checkpoint lists, kept filled from the store, and the sampling controls that apply
to the picked checkpoints (their families' `sample_options`).

The lists fill when the page loads and when a tab is opened. A timer compares a cheap signature of the store's
checkpoints (each run's name, family and folder with the folder's modification time: saving, pruning or replacing
a checkpoint renames an entry of the run folder) and refills them only when it changed, so a running training's
new checkpoints appear without a click and an idle page costs one store query and a stat per run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from pipelines.api import FAMILIES, SAMPLERS, family_of, is_repo_id, samplers_of_folder

from . import views

CHECK_SECONDS = 3.0


def store_signature(store) -> str:
    parts = []
    for row in store.list_runs(("name", "family", "folder")):
        try:
            mtime = os.stat(row["folder"]).st_mtime_ns
        except (OSError, TypeError):
            mtime = 0
        parts.append(f"{row['name']}|{row['family']}|{row['folder']}|{mtime}")
    return "\n".join(parts)


def still_there(value, paths: set[str]) -> bool:
    """A listed checkpoint, or a path typed by hand (a diffusers folder, a model file) that exists, or a Hub id."""
    return bool(value) and (value in paths or Path(str(value)).exists() or is_repo_id(str(value)))


@dataclass
class CheckpointList:
    dropdown: gr.Dropdown
    families: tuple[str, ...]
    pick_newest: bool  # with nothing picked, pick the first choice (the newest run's final checkpoint)

    def update(self, value, choices: list[tuple[str, str]]):
        """New choices; a value only when the one sent is no longer there (a pick made while this update was on its
        way must not be undone by it)."""
        paths = {path for _, path in choices}
        if self.dropdown.multiselect:
            kept = [v for v in value or [] if still_there(v, paths)]
            return gr.update(choices=choices) if kept == list(value or []) else gr.update(choices=choices, value=kept)
        newest = choices[0][1] if choices and self.pick_newest else None
        if still_there(value, paths) or (not value and newest is None):  # nothing gone, or nothing to put in its place:
            return gr.update(choices=choices)  # a path typed while this update was on its way stays
        return gr.update(choices=choices, value=newest)


class CheckpointLists:
    """Every checkpoint list of the use tabs: tabs `add` theirs, the app `wire`s them once all tabs are built."""

    def __init__(self, store):
        self.store = store
        self.lists: list[CheckpointList] = []

    def add(self, dropdown: gr.Dropdown, families: tuple[str, ...], pick_newest: bool = True) -> gr.Dropdown:
        self.lists.append(CheckpointList(dropdown, tuple(families), pick_newest and not dropdown.multiselect))
        return dropdown

    def updates(self, values) -> list:
        found: dict[tuple[str, ...], list] = {}  # lists of the same families share one listing
        for entry in self.lists:
            if entry.families not in found:
                found[entry.families] = views.checkpoint_choices(self.store, entry.families)
        return [entry.update(value, found[entry.families]) for entry, value in zip(self.lists, values)]

    def wire(self, demo: gr.Blocks, tabs: list[gr.Tab]) -> None:
        dropdowns = [entry.dropdown for entry in self.lists]
        seen = gr.State("")  # the signature this page's lists were last filled at

        def fill(*values):
            return [store_signature(self.store), *self.updates(values)]

        def check(last, *values):
            signature = store_signature(self.store)
            if signature == last:
                return [gr.skip()] * (len(values) + 1)
            return [signature, *self.updates(values)]

        quiet = {"api_visibility": "private", "show_progress": "hidden"}
        demo.load(fill, dropdowns, [seen, *dropdowns], **quiet)
        for tab in tabs:
            tab.select(fill, dropdowns, [seen, *dropdowns], **quiet)
        gr.Timer(CHECK_SECONDS).tick(check, [seen, *dropdowns], [seen, *dropdowns], **quiet)


def sample_options(paths, families: tuple[str, ...]) -> set[str]:
    """The sampling controls that apply: those of the picked checkpoints' families, or, before a checkpoint of a
    known family is picked, those of every family the list offers."""
    options, known = set(), False
    for path in [paths] if isinstance(paths, str) else paths or []:
        if not path or not Path(path).is_dir():
            continue
        try:
            spec = family_of(path)
        except (OSError, ValueError):  # an unreadable studio.json: the folder says nothing
            spec = None
        if spec is not None:
            options |= set(spec.sample_options)
            known = True
    if not known:
        for name in families:
            options |= set(FAMILIES[name].sample_options) if name in FAMILIES else set()
    return options


def shown(options: set[str], controls: dict[str, list]) -> list:
    """A visibility update for every component of `controls` (a sample option -> its components), in order."""
    return [gr.update(visible=name in options) for name, components in controls.items() for _ in components]


def follow_family(dropdown: gr.Dropdown, families: tuple[str, ...], controls: dict[str, list]) -> None:
    """Show only the controls of `controls` that the checkpoint(s) picked in `dropdown` take."""
    outputs = [c for components in controls.values() for c in components]

    def follow(picked):
        updates = shown(sample_options(picked, families), controls)
        return updates if len(updates) > 1 else updates[0]  # Gradio takes a lone output's value unwrapped

    dropdown.change(follow, dropdown, outputs, api_visibility="private", show_progress="hidden")


def with_options(families_of_choice: tuple[str, ...], option: str) -> tuple[str, ...]:
    """The families among these whose models take a sampling option (e.g. the ones with samplers to compare)."""
    return tuple(n for n in families_of_choice if n in FAMILIES and option in FAMILIES[n].sample_options)


def sampler_choices(paths) -> list[str]:
    """The samplers that every picked diffusion checkpoint's objective can use (ddpm, flow and edm models each have
    theirs); every sampler name before a diffusion checkpoint is picked."""
    allowed = None
    for path in [paths] if isinstance(paths, str) else paths or []:
        own = samplers_of_folder(path) if path and Path(path).is_dir() else None
        if own is not None:
            allowed = own if allowed is None else tuple(s for s in allowed if s in own)
    return list(SAMPLERS if allowed is None else allowed)


def follow_samplers(dropdown: gr.Dropdown, pickers: list) -> None:
    """Offer in each sampler picker (a dropdown, or a checkbox group) only what the picked checkpoint(s) can use,
    keeping the picks that still apply."""

    def follow(picked, *values):
        choices = sampler_choices(picked)
        updates = []
        for value in values:
            if isinstance(value, list):
                kept = [v for v in value if v in choices]
                updates.append(gr.update(choices=choices, value=kept or choices[:2]))
            else:
                keep = value if value in choices else ("dpm++" if "dpm++" in choices else choices[0])
                updates.append(gr.update(choices=choices, value=keep))
        return updates if len(updates) > 1 else updates[0]

    dropdown.change(follow, [dropdown, *pickers], pickers, api_visibility="private", show_progress="hidden")
