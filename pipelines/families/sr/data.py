"""Super-resolution data: HR images read from the prepared-dataset cache, random patches with their LR inputs,
held-out pairs.

LR inputs are made on the fly (bicubic, or Real-ESRGAN's degradation seeded from torch's RNG, so a resumed
run draws the same ones) or read from pairs prepared by `python -m pipelines degrade`, whose HR images are
rebuilt with the same `prepare_hr` the tool used.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...data import (
    DatasetSplits,
    no_usable_images,
    prepare,
    preprocessing,
    split_indices,
)
from ...data.degrade import degrade
from ...data.pairs import HR_RESIZE, lr_paths
from ...data.transforms import BadImage, open_image

STATS_FILE = "processing_stats.json"


class SRImages(torch.utils.data.Dataset):
    """HR images (rows of a prepared N x 3 x S x S uint8 array, cropped to a multiple of the scale when read) with
    LR inputs (prepared ones, or made when asked for).

    As training data, `len()` is the patches of one epoch and `batch()` cuts random patches; as held-out data,
    `pair(i)` gives whole images, degraded with a fixed seed per image so every evaluation sees the same inputs.
    """

    draws_random = True  # patch positions and degradations come from torch's RNG: never read ahead in a thread

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, lr: list[torch.Tensor] | None, names: list[str], scale: int,
                 degradation: str, patch_size: int = 96, patches_per_epoch: int = 0, augment: bool = False):
        self.pixels, self.rows, self.lr, self.names, self.scale, self.degradation = pixels, rows, lr, names, scale, degradation
        self.patch_size, self.augment = patch_size, augment
        self.length = max(patches_per_epoch, len(rows)) if len(rows) else 0

    def __len__(self) -> int:
        return self.length

    @property
    def num_images(self) -> int:
        return len(self.rows)

    def hr(self, i: int) -> torch.Tensor:
        side = self.pixels.shape[-1] // self.scale * self.scale  # LR pixels then cover whole HR blocks
        return torch.from_numpy(np.array(self.pixels[self.rows[i], :, :side, :side]))

    def batch(self, indices: torch.Tensor) -> dict:
        """Random aligned HR/LR patches of the images behind `indices` (an index wraps around the images)."""
        s, p = self.scale, self.patch_size
        hr_patches, lr_patches = [], []
        for i in (indices % self.num_images).tolist():
            hr = self.hr(i)
            top, left = (int(torch.randint(0, (hr.shape[-1] - p) // s + 1, (1,))) * s for _ in range(2))
            hr_patch = hr[:, top:top + p, left:left + p]
            if self.lr is not None:
                lr_patch = self.lr[i][:, top // s:(top + p) // s, left // s:(left + p) // s]
            else:
                lr_patch = self._degrade(hr_patch, int(torch.randint(0, 2**62, (1,))))
            if self.augment:
                hr_patch, lr_patch = _flip_rotate(hr_patch, lr_patch)
            hr_patches.append(hr_patch)
            lr_patches.append(lr_patch)
        return {"hr": torch.stack(hr_patches), "lr": torch.stack(lr_patches), "index": indices}

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, HR) of a whole image, uint8 3 x h x w and 3 x sh x sw."""
        hr = self.hr(i)
        return (self.lr[i] if self.lr is not None else self._degrade(hr, i)), hr

    def _degrade(self, hr: torch.Tensor, seed: int) -> torch.Tensor:
        lr = degrade(hr.permute(1, 2, 0).numpy(), self.scale, self.degradation, "cubic", np.random.default_rng(seed))
        return torch.from_numpy(np.array(lr)).permute(2, 0, 1)  # a copy: degrade may return a read-only view


def _flip_rotate(hr: torch.Tensor, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random flips and transpose (with the flips: the 90-degree rotations) of both patches."""
    flip_h, flip_v, turn = (bool(torch.rand(1) < 0.5) for _ in range(3))

    def apply(x: torch.Tensor) -> torch.Tensor:
        x = x.flip(-1) if flip_h else x
        x = x.flip(-2) if flip_v else x
        return (x.transpose(-1, -2) if turn else x).contiguous()

    return apply(hr), apply(lr)


def read_pairs_settings(pairs_dir: Path) -> dict:
    stats = pairs_dir / STATS_FILE
    if not stats.is_file():
        raise ValueError(f"sr.pairs_dir: {pairs_dir} has no {STATS_FILE}; prepare it with `python -m pipelines degrade`")
    return json.loads(stats.read_text())["settings"]


def load_sr_splits(config, workspace: Path | None = None, progress=None, should_stop=None) -> DatasetSplits:
    """HR images (prepared into the dataset cache; prepared LR pairs read beside them) split into train / val /
    test by whole image."""
    data, sr, scale = config.data, config.sr, config.model.scale
    pairs_dir = Path(sr.pairs_dir).expanduser() if sr.source == "pairs" else None
    pre = preprocessing(data, channels=3)
    if pairs_dir is not None:
        settings = read_pairs_settings(pairs_dir)
        if settings["size"] != data.image_size:
            raise ValueError(f"data.image_size: the pairs in {pairs_dir} were prepared at {settings['size']} px; "
                             f"set data.image_size to {settings['size']}")
        if scale not in settings["scales"]:
            raise ValueError(f"model.scale: {pairs_dir} holds pairs for x{', x'.join(map(str, settings['scales']))}, not x{scale}")
        pre = preprocessing(data, channels=3, resize=HR_RESIZE, center_crop=True)  # as prepare_hr made the pairs
    prepared = prepare(data, workspace, progress, should_stop, pre, whole=data.dataset == "photos")
    keep, lr_list, skipped = [], [], list(prepared.skipped)
    stems: set[str] = set()
    side = data.image_size // scale * scale
    for row, name in enumerate(prepared.names):
        name = name or f"{data.dataset}[{row}]"
        if pairs_dir is not None:  # a.jpg and a.png share a_lr_4x.png: only the first one's pair is there
            try:
                lr_list.append(read_pair(pairs_dir, Path(name), scale, side, stems))
            except BadImage as exc:
                skipped.append((name, str(exc)))
                continue
        keep.append(row)
    if not keep:
        raise ValueError(no_usable_images(data.dataset, skipped))
    parts = []
    for k, idx in enumerate(split_indices(len(keep), data)):
        idx = np.sort(idx)
        training = k == 0
        parts.append(SRImages(prepared.pixels, np.asarray(keep)[idx], [lr_list[i] for i in idx] if lr_list else None,
                              [prepared.names[keep[i]] for i in idx], scale, sr.degradation, sr.patch_size,
                              sr.patches_per_epoch if training else 0, sr.augment and training))
    if not parts[0].num_images:
        raise ValueError(f"data.dataset: all {len(keep)} images are held out; lower data.val_fraction / data.test_fraction")
    return DatasetSplits(*parts, class_names=[], skipped=skipped, prepared=prepared)


def read_pair(pairs_dir: Path, name: Path, scale: int, side: int, stems: set[str]) -> torch.Tensor:
    """The prepared LR image of the HR image `name` (3 x side/scale x side/scale uint8), or BadImage."""
    stem = name.with_suffix("").as_posix()
    if stem in stems:
        raise BadImage("shares its name with another image of its folder, whose pair it would get")
    stems.add(stem)
    lr_file = lr_paths(pairs_dir, name, scale)[0]
    if not lr_file.is_file():
        raise BadImage(f"no prepared x{scale} pair ({lr_file.name} missing in {lr_file.parent})")
    lr = np.asarray(open_image(lr_file).convert("RGB"))
    if lr.shape[0] * scale != side or lr.shape[1] * scale != side:
        raise BadImage(f"prepared pair {lr_file.name} is {lr.shape[1]} x {lr.shape[0]}, not 1/{scale} of the HR image")
    return torch.from_numpy(lr.copy()).permute(2, 0, 1)
