"""Datasets: built-in sets, image folders and Hugging Face datasets, prepared once into a cache on disk.

`load_splits(cfg, workspace)` returns the seeded train/validation/test split of the prepared dataset: each split
is a set of rows of one memory-mapped uint8 array (`cache.py`), read a batch at a time, so memory does not grow
with the dataset. Files that cannot be used are skipped and listed in `DatasetSplits.skipped` (the training run
writes them to its log) and never stop the run.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .builtin import BUILTIN, whole_photos
from .cache import Prepared, caches_of, digest, open_prepared
from .folder import image_folder
from .hub import hub_dataset, is_saved_dataset
from .preparation import Preprocessing, Progress, prepare_records
from .source import Source, StopRequested

if TYPE_CHECKING:
    from .dataset import DatasetSplits

log = logging.getLogger(__name__)

FORMAT = 2  # of a prepared row; 2: EXIF orientation applied, oversized images refused


def dataset_slug(dataset: str) -> str:
    """A short name for run names: the built-in name, a folder's name, or a hub id with '/' replaced."""
    if dataset in BUILTIN:
        return dataset
    path = Path(dataset).expanduser()
    slug = (path.resolve().name if path.exists() else dataset.replace("/", "-")) or "data"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", slug).strip("._-") or "data"


def check_dataset(name: str) -> None:
    """Refuse, before a run is queued, a dataset that names a folder or file that cannot be used.
    (Hub ids are only checked when the run loads them: that may need the network.)"""
    if name in BUILTIN:
        return
    path = Path(name).expanduser()
    if path.is_file():
        raise ValueError(f"data.dataset: {name} is a file; give a folder of images, a built-in name ({', '.join(BUILTIN)}) or a hub id")
    if not path.exists() and (name.startswith((".", "/", "~")) or Path(name).is_absolute()):
        raise ValueError(f"data.dataset: folder {name} does not exist")


def split_indices(n: int, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(cfg.split_seed).permutation(n)
    n_test = int(round(n * cfg.test_fraction))
    n_val = int(round(n * cfg.val_fraction))
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def subsample(records, cfg):
    """At most `num_samples` records, a seeded choice in the original order."""
    if cfg.num_samples and cfg.num_samples < len(records):
        keep = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(records))[: cfg.num_samples])
        records = [records[i] for i in keep]
    return records


def cache_root(workspace: str | Path | None) -> Path:
    return Path(workspace) / "cache" / "datasets"


def preprocessing(cfg, **changes) -> Preprocessing:
    return Preprocessing(**{"size": cfg.image_size, "channels": cfg.channels, "resize": cfg.resize,
                            "center_crop": cfg.center_crop, "max_megapixels": cfg.max_megapixels, **changes})


@dataclass
class Plan:
    """What preparing a dataset involves: its cache folder (`found` when prepared already) or the records to write."""
    root: Path
    key: str
    pre: Preprocessing
    found: Prepared | None = None
    source: Source | None = None
    records: object = None  # the selected records, when the cache must be written
    lineage: str = ""

    def state(self) -> str:
        """The cache state in words, for the dataset preview."""
        if self.found:
            return f"prepared ({len(self.found):,} images in {self.found.folder})"
        total = len(self.records)
        if not isinstance(self.records, list):
            return f"not prepared yet: {total:,} images to decode"
        known = {i for other in caches_of(self.root, self.lineage) for i in other.identities}
        new = sum(r.identity not in known for r in self.records)
        if new == total:
            return f"not prepared yet: {total:,} images to decode"
        return f"{new:,} of {total:,} files are new or changed and will be decoded; the rest is reused"

    def write(self, workers: int = 0, progress: Progress | None = None, should_stop=None) -> Prepared:
        """Prepare the records into the cache (reusing what older caches of the source hold)."""
        identities = {r.identity for r in self.source.records} if isinstance(self.records, list) else None
        return prepare_records(self.records, self.pre, self.root, self.key, self.lineage, self.source.class_names,
                               self.source.skipped, workers, progress, should_stop, identities)


def plan(cfg, workspace: str | Path, should_stop=None, pre: Preprocessing | None = None, whole: bool = False) -> Plan:
    root, pre = cache_root(workspace), pre or preprocessing(cfg)
    name = cfg.dataset
    if name in BUILTIN:  # a built-in set is its name and parameters: nothing is read on a cache hit
        source_key = {"builtin": name, "whole": whole, "count": cfg.synthetic_count, "seed": cfg.split_seed,
                      "holdout": cfg.holdout, "num_samples": cfg.num_samples}
        key = digest({"format": FORMAT, "pre": asdict(pre), "source": source_key})
        found = open_prepared(root / key)
        if found:
            return Plan(root, key, pre, found)
        source = whole_photos() if whole and name == "photos" else read_source(cfg)
    else:
        source = read_source(cfg, should_stop, workspace)
        source_key = source.key
    records = subsample(source.records, cfg)
    if name not in BUILTIN:
        # A folder's rows are part of its key (a changed file is another dataset); a hub dataset's fingerprint is.
        rows = digest([(r.identity, r.label, r.caption) for r in records]) if isinstance(records, list) else None
        key = digest({"format": FORMAT, "pre": asdict(pre), "source": source_key, "rows": rows})
        found = open_prepared(root / key)
        if found:
            return Plan(root, key, pre, found)
    if found is not None:
        log.warning("the prepared dataset %s was incomplete or damaged (%s): preparing it again", root / key, found.reason)
    lineage = digest({"format": FORMAT, "pre": asdict(pre), "source": source_key})
    return Plan(root, key, pre, None, source, records, lineage)


def prepare(cfg, workspace: str | Path | None = None, progress: Progress | None = None, should_stop=None,
            pre: Preprocessing | None = None, whole: bool = False) -> Prepared:
    """The dataset of `cfg` prepared in the workspace's cache (read from it when it is there already).
    Without a workspace it is prepared in a temporary folder that is gone once mapped (tests, one-off scripts).
    `whole`: the built-in photos whole rather than as random crops (super-resolution)."""
    if workspace is None:
        tmp = Path(tempfile.mkdtemp(prefix="prepared-"))
        try:
            return prepare(cfg, tmp, progress, should_stop, pre, whole)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the memory map keeps the file's pages until it is closed
    p = plan(cfg, workspace, should_stop, pre, whole)
    return p.found or p.write(cfg.workers, progress, should_stop)


def read_source(cfg, should_stop=None, workspace: Path | None = None) -> Source:
    name = cfg.dataset
    if name == "shapes":
        return BUILTIN[name](cfg.synthetic_count, cfg.split_seed, tuple(tuple(c.split()) for c in cfg.holdout))
    if name in BUILTIN:
        return BUILTIN[name](cfg.synthetic_count, cfg.split_seed)
    check_dataset(name)
    path = Path(name).expanduser()
    downloads = Path(workspace) / "cache" / "downloads" if workspace is not None else None
    if path.is_dir() and not is_saved_dataset(path):
        source = image_folder(path, should_stop)
        source.key = {"folder": str(path.resolve())}
        return source
    return hub_dataset(str(path) if path.is_dir() else name, cfg, cfg.split_seed, downloads, should_stop)


def load_splits(cfg, workspace: str | Path | None = None, progress: Progress | None = None, should_stop=None) -> DatasetSplits:
    """Prepare (or read from the cache) and split the dataset described by a DataConfig."""
    prepared = prepare(cfg, workspace, progress, should_stop)
    if not len(prepared):
        raise ValueError(no_usable_images(cfg.dataset, prepared.skipped))
    from .dataset import DatasetSplits, ImageDataset

    parts = [ImageDataset.rows_of(prepared, np.sort(idx)) for idx in split_indices(len(prepared), cfg)]
    return DatasetSplits(*parts, class_names=prepared.class_names, skipped=prepared.skipped, prepared=prepared)


def __getattr__(name: str):
    """The torch datasets, imported when first asked for: this package's listing, checks and preview need no torch
    (the studio's page is served before torch is loaded)."""
    if name in ("ImageDataset", "DatasetSplits"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def no_usable_images(dataset: str, skipped: list[tuple[str, str]], shown: int = 5) -> str:
    """The error when nothing usable remains, naming the first skipped files and why."""
    first = "; ".join(f"{Path(name).name}: {reason}" for name, reason in skipped[:shown])
    more = f" (and {len(skipped) - shown} more)" if len(skipped) > shown else ""
    return f"data.dataset: no usable images in {dataset} ({len(skipped)} skipped{': ' + first if first else ''}{more})"


__all__ = ["DatasetSplits", "ImageDataset", "load_splits", "prepare", "check_dataset", "dataset_slug", "BUILTIN",
           "StopRequested"]
