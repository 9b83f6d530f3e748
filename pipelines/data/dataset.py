"""The rows of a prepared dataset as torch datasets: what training and evaluation read batches from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .cache import Prepared


class ImageDataset(torch.utils.data.Dataset):
    """Rows of a prepared uint8 array (N x C x H x W; a memory map) with labels (-1 when unlabelled) and captions.
    Images are read by index, a batch at a time; `all_images()` loads the whole split (small sets, tests)."""

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, labels: torch.Tensor, captions: list[str]):
        self.pixels, self.rows, self.labels, self.captions = pixels, rows, labels, captions

    @classmethod
    def from_tensor(cls, images: torch.Tensor, labels: torch.Tensor | None = None, captions: list[str] | None = None):
        n = len(images)
        return cls(images.numpy(), np.arange(n), labels if labels is not None else torch.full((n,), -1),
                   captions if captions is not None else [""] * n)

    @classmethod
    def rows_of(cls, prepared: Prepared, rows: np.ndarray) -> ImageDataset:
        """The split of `prepared` made of `rows` (sorted, so that a batch reads the map in order)."""
        labels = torch.from_numpy(prepared.labels)[torch.from_numpy(rows)]
        return cls(prepared.pixels, rows, labels, [prepared.captions[i] for i in rows])

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])

    def read(self, indices) -> torch.Tensor:
        """uint8 images of the split's rows at `indices` (a tensor, array, list or slice), copied out of the map."""
        rows = self.rows[indices.numpy() if isinstance(indices, torch.Tensor) else indices]
        return torch.from_numpy(np.ascontiguousarray(self.pixels[np.atleast_1d(rows)]))

    def all_images(self) -> torch.Tensor:
        return self.read(slice(None))

    def chunks(self, size: int = 512):
        """The split's images in order, `size` at a time."""
        for start in range(0, len(self), size):
            yield self.read(slice(start, start + size))

    def __getitem__(self, i: int) -> dict:
        return {"images": self.read([i])[0], "labels": self.labels[i], "captions": self.captions[i], "index": i}

    def batch(self, indices: torch.Tensor) -> dict:
        return {"images": self.read(indices), "labels": self.labels[indices],
                "captions": [self.captions[i] for i in indices.tolist()], "index": indices}


@dataclass
class DatasetSplits:
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    prepared: Prepared | None = None  # the cache the splits read from

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
