"""A dataset as training will see it, before training: counts, classes, captions, skipped files, a grid of the
preprocessed images, and the state of its prepared-dataset cache.

`python -m pipelines data --dataset X [--set data.key=value ...]` prints it; the Train tab shows it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import plan
from .propose import Proposal, propose_for, spread
from .transforms import BadImage, preprocess, to_image


@dataclass
class Preview:
    dataset: str
    cache_state: str
    num_images: int
    class_counts: dict[str, int] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)  # a few examples
    skipped: list[tuple[str, str]] = field(default_factory=list)  # every one, with its reason
    grid: list[np.ndarray] = field(default_factory=list)  # uint8 H x W x C, exactly as trained on
    prepared: bool = False  # False: counted from the source; unreadable files show when it is prepared
    proposal: Proposal = field(default_factory=Proposal)  # the channels and size the images have, if not the config's

    def text(self, shown: int = 10) -> str:
        """The preview in words, one fact per line."""
        lines = [f"{self.dataset}: {self.num_images:,} images" + ("" if self.prepared else " (not decoded yet)"),
                 f"cache: {self.cache_state}"]
        if self.class_counts:
            lines.append("classes: " + ", ".join(f"{name} {n:,}" for name, n in self.class_counts.items()))
        lines += [f'caption: "{c}"' for c in self.captions]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,} file{'s' if len(self.skipped) > 1 else ''}:")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped[:shown]]
            if len(self.skipped) > shown:
                lines.append(f"  ... and {len(self.skipped) - shown:,} more")
        lines += [f"proposed: {reason}" for reason in self.proposal.reasons.values()]
        if self.proposal.changes:
            lines.append("  " + " ".join(f"--set {k}={v}" for k, v in self.proposal.changes.items()))
        return "\n".join(lines)


def dataset_preview(cfg, workspace: str | Path, prepare: bool = True, num_grid: int = 32, progress=None,
                    should_stop=None) -> Preview:
    """The preview of DataConfig `cfg`. With `prepare`, the dataset is prepared into the workspace's cache (so the
    first run starts at once) and every count is exact; without, it is counted from the source and the grid's
    images are decoded on their own."""
    p = plan(cfg, workspace, should_stop)
    state = p.state()
    if p.found or prepare:
        data = p.found or p.write(cfg.workers, progress, should_stop)
        if not p.found:
            state = (f"prepared just now ({data.meta['decoded']:,} images decoded, {data.meta['reused']:,} reused, "
                     f"in {data.folder})")
        grid = [data.pixels[i].transpose(1, 2, 0) for i in spread(len(data), num_grid)]
        return Preview(cfg.dataset, state, len(data), counts(data.labels, data.class_names), examples(data.captions),
                       list(data.skipped), grid, prepared=True, proposal=propose_for(cfg, workspace, p.records))
    records = p.records
    grid = []
    for i in spread(len(records), num_grid):
        try:
            grid.append(preprocess(to_image(records[i].image, p.pre.max_megapixels), p.pre.size, p.pre.channels,
                                   p.pre.resize, p.pre.center_crop))
        except BadImage:
            continue
    lazy = not isinstance(records, list)  # a hub dataset's rows: not read one by one for a preview
    labels = [] if lazy else [r.label for r in records]
    captions = [] if lazy else [r.caption for r in records[:200]]
    return Preview(cfg.dataset, state, len(records), counts(labels, p.source.class_names), examples(captions),
                   list(p.source.skipped), grid, proposal=propose_for(cfg, workspace, records))


def counts(labels, class_names: list[str]) -> dict[str, int]:
    found = Counter(int(v) for v in labels)
    return {name: found.get(k, 0) for k, name in enumerate(class_names)}


def examples(captions: list[str], n: int = 3) -> list[str]:
    seen: list[str] = []
    for c in captions:
        if c and c not in seen:
            seen.append(c)
            if len(seen) == n:
                break
    return seen
