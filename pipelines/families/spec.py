"""What a model family tells the rest of the studio about itself: plain data, importable without torch."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "configs"

KINDS = ("images", "text", "upscaler")  # generates from noise (and a class), from prompts, or enlarges images
SAMPLE_OPTIONS = ("sampler", "steps", "guidance", "class", "truncation", "prompt")


@dataclass(frozen=True)
class Chart:
    """A chart of logged values in the Runs tab, with a short guide to reading it (Markdown)."""
    metrics: tuple[str, ...]
    title: str
    guide: str = ""


@dataclass(frozen=True)
class Form:
    """How the Train tab shows the family: its presets, the fields on the form (the rest is in the YAML), its charts."""
    label: str
    preset_prefix: str
    default_preset: str
    fields: tuple[str, ...]  # dotted config paths
    # Fields in closed accordions under the form, (title, paths): options only some runs use.
    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()
    loss_metrics: tuple[str, ...] = ("loss",)  # drawn together in the Runs tab's loss chart
    lr_metrics: tuple[str, ...] = ("lr",)  # and in its learning-rate chart
    charts: tuple[Chart, ...] = ()  # the family's own charts
    fid: bool = True  # whether its evaluations are FID/FD (the Runs tab's FD chart and table)
    other_presets: tuple[str, ...] = ()  # presets in configs/ without the prefix
    config_dir: Path = CONFIG_DIR
    summary: str = ""  # "module:function" (store, run name) -> Markdown of the latest scores, for families without FID
    extras: tuple[str, ...] = ()  # parts of the Train form the studio offers by name ("lr-pairs")

    @property
    def all_fields(self) -> tuple[str, ...]:
        return self.fields + tuple(path for _, paths in self.sections for path in paths)

    def presets(self) -> list[str]:
        return sorted(p.name for p in self.config_dir.glob(f"{self.preset_prefix}*.yaml")) + list(self.other_presets)


@dataclass(frozen=True)
class CardFacts:
    """What a family's model card says of its saved folders: the Hub's pipeline tag, the library that loads them
    (`diffusers` only where stock diffusers does), tags, and how to load one (Markdown; `{path}` is the folder or
    Hub id), and which of its logged metrics are scores of the model (FD/KID evaluations are always shown)."""
    pipeline_tag: str
    usage: str
    library_name: str | None = None
    tags: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()  # e.g. psnr: its value at the folder's step; "<split>_psnr": a final evaluation


@dataclass(frozen=True)
class FamilySpec:
    """A family: its name, config class, and where its training family and loaded-model class live ("module:Class",
    relative to `package`, imported when first needed: training and models pull in torch and diffusers)."""
    name: str
    noun: str  # what its models are called in tables ("diffusion", "GAN")
    package: str
    config: type
    trainer: str
    model: str
    kind: str
    form: Form
    sample_options: tuple[str, ...] = ()  # which SampleRequest fields its models use (the tabs show only those)
    card: str = ""  # "module:function" (studio.json meta) -> CardFacts for its model cards; empty: a generic card

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"family {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        unknown = set(self.sample_options) - set(SAMPLE_OPTIONS)
        if unknown:
            raise ValueError(f"family {self.name}: unknown sample options {sorted(unknown)}")

    def trainer_class(self) -> type:
        return _attribute(self.package, self.trainer)

    def model_class(self) -> type:
        return _attribute(self.package, self.model)

    def card_facts(self, meta: dict) -> CardFacts | None:
        return _attribute(self.package, self.card)(meta) if self.card else None

    def summary(self, store, name: str) -> str:
        return _attribute(self.package, self.form.summary)(store, name) if self.form.summary else ""


def _attribute(package: str, where: str):
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(f"{package}.{module}"), name)
