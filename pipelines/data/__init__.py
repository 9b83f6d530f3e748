"""Datasets: built-in sets, image folders and Hugging Face datasets, preprocessed once into uint8 tensors.

`load_splits(cfg)` returns the seeded train/validation/test split. Files that cannot be used are skipped and
listed in `DatasetSplits.skipped` (the training run writes them to its log) and never stop the run.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .builtin import BUILTIN
from .folder import image_folder
from .hub import hub_dataset, is_saved_dataset
from .source import Record, Source
from .transforms import BadImage, open_image, preprocess

log = logging.getLogger(__name__)


class ImageDataset(torch.utils.data.Dataset):
    """Preprocessed images (uint8, N x C x H x W) with labels (-1 when unlabelled) and captions."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, captions: list[str]):
        self.images, self.labels, self.captions = images, labels, captions

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"images": self.images[i], "labels": self.labels[i], "captions": self.captions[i], "index": i}

    def batch(self, indices: torch.Tensor) -> dict:
        return {"images": self.images[indices], "labels": self.labels[indices],
                "captions": [self.captions[i] for i in indices.tolist()], "index": indices}


@dataclass
class DatasetSplits:
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


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


def read_source(cfg) -> Source:
    name = cfg.dataset
    if name == "shapes":
        return BUILTIN[name](cfg.synthetic_count, cfg.split_seed, tuple(tuple(c.split()) for c in cfg.holdout))
    if name in BUILTIN:
        return BUILTIN[name](cfg.synthetic_count, cfg.split_seed)
    check_dataset(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return hub_dataset(str(path), cfg, cfg.split_seed) if is_saved_dataset(path) else image_folder(path)
    return hub_dataset(name, cfg, cfg.split_seed)


def to_image(item) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, Path):
        return open_image(item)
    if isinstance(item, dict) and item.get("bytes"):
        return open_image(io.BytesIO(item["bytes"]))
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    raise BadImage(f"unsupported image value of type {type(item).__name__}")


def split_indices(n: int, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(cfg.split_seed).permutation(n)
    n_test = int(round(n * cfg.test_fraction))
    n_val = int(round(n * cfg.val_fraction))
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def subsample(records: list[Record], cfg) -> list[Record]:
    """At most `num_samples` records, a seeded choice in the original order."""
    if cfg.num_samples and cfg.num_samples < len(records):
        keep = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(records))[: cfg.num_samples])
        records = [records[i] for i in keep]
    return records


def load_splits(cfg) -> DatasetSplits:
    """Read, subsample, preprocess and split the dataset described by a DataConfig."""
    source = read_source(cfg)
    records = subsample(source.records, cfg)
    arrays, labels, captions, skipped = [], [], [], list(source.skipped)
    for rec in records:
        try:
            arrays.append(preprocess(to_image(rec.image), cfg.image_size, cfg.channels, cfg.resize, cfg.center_crop))
        except BadImage as exc:
            skipped.append((rec.name or str(rec.image), str(exc)))
            continue
        labels.append(rec.label)
        captions.append(rec.caption)
    if not arrays:
        raise ValueError(f"data.dataset: no usable images in {cfg.dataset} ({len(skipped)} skipped)")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    label_tensor = torch.tensor(labels, dtype=torch.long)
    parts = []
    for idx in split_indices(len(images), cfg):
        idx = torch.from_numpy(np.sort(idx))
        parts.append(ImageDataset(images[idx], label_tensor[idx], [captions[i] for i in idx.tolist()]))
    return DatasetSplits(*parts, class_names=source.class_names, skipped=skipped)


__all__ = ["DatasetSplits", "ImageDataset", "load_splits", "check_dataset", "dataset_slug", "BUILTIN"]
