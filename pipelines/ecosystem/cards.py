"""Model cards: a README.md in the Hugging Face model-card format in every final/ and best/.

YAML metadata (pipeline tag, library, tags, the dataset, the metrics with their extractor and sample count under
`model-index`), then the sample grid (copied beside it as samples.png), the evaluations, how it was trained
(steps, time, device), how to load it (the family's CardFacts) and the config. The card is written into the
folder's temporary copy, so it appears with the model (checkpoints.atomic_dir); later updates (the final
evaluation, the grid of best/'s epoch) replace each file by a rename, so the folder is complete at every instant.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import families
from ..checkpoints import read_meta
from ..families.spec import CardFacts
from ..metrics import EXTRACTOR_NOTES
from ..train.callbacks import Callback
from .notify import shareable_config

README = "README.md"
GRID = "samples.png"
CARD_KINDS = ("best", "final")
GENERIC_USAGE = """With this studio (a local folder or a Hub id):

```python
from pipelines import api

model = api.load("{path}")
```
"""


@dataclass
class Score:
    """One number of the card: what it is, its value, and what it is comparable with."""
    type: str  # model-index metric type: fd, kid, psnr, ...
    name: str  # e.g. "FD (digits-cnn, 1000 samples vs train)"
    value: float
    split: str = ""
    step: int = 0
    note: str = ""


@dataclass
class CardContent:
    """Everything a card says, gathered from the run when the folder is written."""
    run_name: str
    kind: str  # best or final
    family: str
    meta: dict
    config_yaml: str
    dataset: str
    image_size: int
    device: str
    precision: str
    seconds: float
    scores: list[Score] = field(default_factory=list)
    grid: Path | None = None
    grid_epoch: int | None = None


def dataset_ids(dataset: str) -> list[str]:
    """The dataset as Hub metadata: only a Hub id (never a built-in name or a local path)."""
    from ..data import BUILTIN

    if dataset in BUILTIN or os.path.isabs(dataset) or dataset.startswith(".") or Path(dataset).exists():
        return []
    return [dataset]


def dataset_label(dataset: str) -> str:
    from ..data import BUILTIN

    return f"{dataset} (built-in)" if dataset in BUILTIN else f"the folder {Path(dataset).name}/" \
        if Path(dataset).exists() else dataset


def metadata(f: CardContent, facts: CardFacts) -> dict:
    meta = {}
    if facts.library_name:
        meta["library_name"] = facts.library_name
    meta["pipeline_tag"] = facts.pipeline_tag
    meta["tags"] = ["pipelines-studio", *facts.tags]
    if dataset_ids(f.dataset):
        meta["datasets"] = dataset_ids(f.dataset)
    if f.scores:
        name = f.dataset if not Path(f.dataset).exists() else Path(f.dataset).name
        by_split: dict[str, list[Score]] = {}
        for s in f.scores:
            by_split.setdefault(s.split, []).append(s)
        meta["model-index"] = [{"name": f.run_name, "results": [
            {"task": {"type": facts.pipeline_tag},
             "dataset": {"name": name, "type": name, **({"split": split} if split else {})},
             "metrics": [{"type": s.type, "name": s.name, "value": round(float(s.value), 6)} for s in scores]}
            for split, scores in by_split.items()]}]
    return meta


def fmt_seconds(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min" if h else f"{m} min {s} s" if m else f"{s} s"


def render(f: CardContent) -> str:
    spec, facts = families.FAMILIES.get(f.family), family_facts(f.family, f.meta)
    noun = spec.noun if spec is not None else f.family
    evaluated = any(s.note == "during training" or s.note.startswith("held-out validation") for s in f.scores)
    which = {"best": "the weights that scored best in the evaluations during training" if evaluated
             else "the weights with the lowest epoch loss at a checkpoint epoch",
             "final": "the weights at the end of training"}.get(f.kind, f.kind)
    lines = ["---", yaml.safe_dump(metadata(f, facts), sort_keys=False).strip(), "---", "",
             f"# {f.run_name}", "",
             (f"A {noun} model (`{f.family}`) at {f.image_size}x{f.image_size} pixels, trained on "
              f"{dataset_label(f.dataset)} with a local generative-image studio (`python -m pipelines`). "
              f"This folder is `{f.kind}/`: {which} (step {f.meta.get('step', 0)}, epoch {f.meta.get('epoch', 0)})."), ""]
    if f.grid is not None:
        lines += ["## Samples", "", f"![samples]({GRID})", "",
                  f"Fixed seeds, from the weights at epoch {f.grid_epoch}." if f.grid_epoch is not None else "", ""]
    lines += ["## Evaluation", ""]
    if f.scores:
        lines += ["| metric | value | split | step | notes |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {s.name} | {s.value:.4g} | {s.split or '-'} | {s.step} | {s.note} |" for s in f.scores]
        if any(s.type == "fd" for s in f.scores):
            lines += ["", "Distances (FD, KID) are comparable only at the same extractor, split and sample count."]
            used = [name for name in EXTRACTOR_NOTES if any(s.name.startswith(f"FD ({name},") for s in f.scores)]
            lines += [f"- `{name}`: {EXTRACTOR_NOTES[name]}." for name in used]
    else:
        lines += ["Not evaluated (evaluation.every_epochs was 0, or no evaluation had run yet)."]
    loss, where = f.meta.get("loss"), f"path/to/{f.run_name}/{f.kind}"
    lines += ["", "## Training", "",
              f"- steps: {f.meta.get('step', 0)}, epochs: {f.meta.get('epoch', 0)}" + (f", loss at the end: {loss:.4g}" if isinstance(loss, float) else ""),
              f"- training time: {fmt_seconds(f.seconds)} on {f.device} (mixed precision: {f.precision})",
              f"- dataset: {dataset_label(f.dataset)}", "",
              "## How to load", "", f"`{where}` stands for this folder, or its Hub id (`user/name`) once pushed.", "",
              facts.usage.replace("{path}", where).strip(), "",
              "## Config", "", "```yaml", f.config_yaml.strip(), "```", ""]
    return "\n".join(lines)


def write_file_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_card(folder: Path, content: CardContent) -> Path:
    """samples.png, then README.md, each replaced by a rename (a folder being written is not yet visible anyway)."""
    folder = Path(folder)
    if content.grid is not None and Path(content.grid).is_file():
        write_file_atomic(folder / GRID, Path(content.grid).read_bytes())
    else:
        content.grid = None
    write_file_atomic(folder / README, render(content).encode())
    return folder / README


def read_card(folder: str | Path) -> tuple[dict, str]:
    """A card's YAML metadata and its Markdown body (yaml.safe_load: a card from elsewhere cannot run code)."""
    text = (Path(folder) / README).read_text()
    if not text.startswith("---\n"):
        return {}, text
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head) or {}, body


# Gathering from the run -----------------------------------------------------------------------------------

def family_facts(family: str, meta: dict) -> CardFacts:
    """The family's CardFacts, or generic ones for a family that has none."""
    spec = families.FAMILIES.get(family)
    facts = spec.card_facts(meta) if spec is not None else None
    if facts is None:
        facts = CardFacts(pipeline_tag="unconditional-image-generation", usage=GENERIC_USAGE)
    return facts


def scores(store, run_name: str, metrics: tuple[str, ...], kind: str, step: int) -> list[Score]:
    """The evaluations of the folder's step and, for best/, the latest final evaluation on held-out images; and
    the family's score `metrics` at that step (for best/, their latest final "<split>_<metric>" values too)."""
    out = []
    evaluations = store.evaluations(run_name)
    finals = [e for e in evaluations if e["kind"] == "final" and e["checkpoint"] == "best"][-1:] if kind == "best" else []
    for e in evaluations:
        if (e["kind"] == "training" and e["step"] == step) or e in finals:
            what = f"{e['extractor']}, {e['num_samples']} samples vs {e['num_real']} {e['split']} images"
            note = "final evaluation on held-out images" if e["kind"] == "final" else "during training"
            out += [Score("fd", f"FD ({what})", e["fd"], e["split"], e["step"], note),
                    Score("kid", f"KID ({what})", e["kid"], e["split"], e["step"], note)]
    finals = {f"{split}_{m}": (split, m) for split in ("test", "val", "train") for m in metrics}
    names = list(metrics) + (list(finals) if kind == "best" else [])
    latest = {}
    for row in store.metrics(run_name, names=names) if names else []:
        if row["name"] in finals or row["step"] == step:
            latest[row["name"]] = row
    for name, row in latest.items():
        split, metric = finals.get(name, ("", name))
        note = "final evaluation on held-out images" if name in finals else "held-out validation during training"
        out.append(Score(metric, metric if not split else f"{metric} ({split})", row["value"], split, row["step"], note))
    return out


def latest_grid(store, run_name: str, step: int) -> tuple[Path | None, int | None]:
    grids = [a for a in store.artifacts(run_name, "samples") if a["step"] <= step and Path(a["path"]).is_file()]
    if not grids:
        return None, None
    path = Path(grids[-1]["path"])
    epoch = path.stem.removeprefix("epoch_")
    return path, int(epoch) if epoch.isdigit() else None


class ModelCards(Callback):
    """Writes the card of best/ and final/ as they are saved, and brings them up to date when the grid of
    best/'s epoch or the final evaluation arrives. Keeps the training time across resumes in its state."""

    def __init__(self, run, config, log: logging.Logger):
        self.run, self.config, self.log = run, config, log
        self.seconds_before, self.started = 0.0, time.monotonic()
        self.pending_best = False
        self.saved: dict[str, float] = {}  # folder kind -> training seconds when it was written

    def on_start(self, trainer) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def content(self, trainer, kind: str, meta: dict, seconds: float) -> CardContent:
        store, name, step = self.run.store, self.run.name, meta.get("step", trainer.state.global_step)
        grid, epoch = latest_grid(store, name, step)
        device = trainer.accelerator.device
        if device.type == "cuda":
            import torch

            device = f"{device} ({torch.cuda.get_device_name(device)})"
        return CardContent(self.run.name, kind, self.config.family, meta,
                         yaml.safe_dump(shareable_config(self.config), sort_keys=False), self.config.data.dataset,
                         self.config.data.image_size, str(device), trainer.family.precision.mode, seconds,
                         scores(store, name, family_facts(self.config.family, meta).metrics, kind, step), grid, epoch)

    def on_save(self, trainer, folder: Path, target: Path) -> None:
        if target.name in CARD_KINDS:
            self.saved[target.name] = self.seconds()
            self.write(trainer, folder, target.name)
            self.pending_best = self.pending_best or target.name == "best"

    def refresh(self, trainer, kind: str) -> None:
        folder = self.run.folder / kind
        if (folder / README).is_file() and kind in self.saved:
            self.write(trainer, folder, kind)

    def write(self, trainer, folder: Path, kind: str) -> None:
        try:
            write_card(folder, self.content(trainer, kind, read_meta(folder), self.saved[kind]))
        except Exception as exc:  # noqa: BLE001  the model matters more than its description: save it anyway
            self.log.warning("model card of %s/ not written: %s: %s", kind, type(exc).__name__, exc)

    def on_epoch_end(self, trainer) -> None:
        # best/ is saved when its evaluation comes, before that epoch's sample grid: show the grid of its epoch.
        if self.pending_best and trainer.is_main:
            self.refresh(trainer, "best")
        self.pending_best = False

    def on_end(self, trainer) -> None:
        if trainer.is_main:
            for kind in CARD_KINDS:
                self.refresh(trainer, kind)

    def state_dict(self) -> dict:
        return {"seconds": self.seconds(), "saved": dict(self.saved)}

    def load_state_dict(self, state: dict) -> None:
        self.seconds_before, self.saved = state.get("seconds", 0.0), dict(state.get("saved", {}))
