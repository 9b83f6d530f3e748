"""Super-resolution data: whole HR images in memory, random patches with their LR inputs, held-out pairs.

LR inputs are made on the fly (bicubic, or Real-ESRGAN's degradation seeded from torch's RNG, so a resumed
run draws the same ones) or read from pairs prepared by `python -m pipelines degrade`, whose HR images are
rebuilt with the same `prepare_hr` the tool used.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .builtin import whole_photos
from .degrade import crop_to_multiple, degrade
from .pairs import lr_paths, prepare_hr
from .transforms import BadImage, open_image, preprocess
from . import DatasetSplits, read_source, split_indices, subsample, to_image

STATS_FILE = "processing_stats.json"


class SRImages(torch.utils.data.Dataset):
    """HR images (N x 3 x S x S uint8) with LR inputs (prepared ones, or made when asked for).

    As training data, `len()` is the patches of one epoch and `batch()` cuts random patches; as held-out data,
    `pair(i)` gives whole images, degraded with a fixed seed per image so every evaluation sees the same inputs.
    """

    def __init__(self, hr: torch.Tensor, lr: torch.Tensor | None, names: list[str], scale: int, degradation: str,
                 patch_size: int = 96, patches_per_epoch: int = 0, augment: bool = False):
        self.images, self.lr, self.names, self.scale, self.degradation = hr, lr, names, scale, degradation
        self.patch_size, self.augment = patch_size, augment
        self.length = max(patches_per_epoch, len(hr)) if len(hr) else 0

    def __len__(self) -> int:
        return self.length

    @property
    def num_images(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor) -> dict:
        """Random aligned HR/LR patches of the images behind `indices` (an index wraps around the images)."""
        s, p = self.scale, self.patch_size
        hr_patches, lr_patches = [], []
        for i in (indices % len(self.images)).tolist():
            hr = self.images[i]
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
        hr = self.images[i]
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


def load_sr_splits(config) -> DatasetSplits:
    """HR images (and prepared LR ones) split into train / val / test by whole image."""
    data, sr, scale = config.data, config.sr, config.model.scale
    pairs_dir = Path(sr.pairs_dir).expanduser() if sr.source == "pairs" else None
    if pairs_dir is not None:
        settings = read_pairs_settings(pairs_dir)
        if settings["size"] != data.image_size:
            raise ValueError(f"data.image_size: the pairs in {pairs_dir} were prepared at {settings['size']} px; "
                             f"set data.image_size to {settings['size']}")
        if scale not in settings["scales"]:
            raise ValueError(f"model.scale: {pairs_dir} holds pairs for x{', x'.join(map(str, settings['scales']))}, not x{scale}")
    source = whole_photos() if data.dataset == "photos" else read_source(data)
    hr_list, lr_list, names, skipped = [], [], [], list(source.skipped)
    stems: set[str] = set()
    for rec in subsample(source.records, data):
        name = rec.name or str(rec.image)
        try:
            if pairs_dir is not None:  # a.jpg and a.png share a_lr_4x.png: only the first one's pair is there
                stem = Path(rec.name).with_suffix("").as_posix()
                if stem in stems:
                    raise BadImage("shares its name with another image of its folder, whose pair it would get")
                stems.add(stem)
            img = to_image(rec.image)
            if pairs_dir is not None:
                hr = crop_to_multiple(prepare_hr(img, data.image_size), scale)
                lr_file = lr_paths(pairs_dir, Path(rec.name), scale)[0]
                if not lr_file.is_file():
                    raise BadImage(f"no prepared x{scale} pair ({lr_file.name} missing in {lr_file.parent})")
                lr = np.asarray(open_image(lr_file).convert("RGB"))
                if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
                    raise BadImage(f"prepared pair {lr_file.name} is {lr.shape[1]} x {lr.shape[0]}, not 1/{scale} of the HR image")
                lr_list.append(lr)
            else:
                hr = crop_to_multiple(preprocess(img, data.image_size, 3, data.resize, data.center_crop), scale)
        except BadImage as exc:
            skipped.append((name, str(exc)))
            continue
        hr_list.append(hr)
        names.append(name)
    if not hr_list:
        raise ValueError(f"data.dataset: no usable images in {data.dataset} ({len(skipped)} skipped)")
    hr_all = torch.from_numpy(np.stack(hr_list)).permute(0, 3, 1, 2).contiguous()
    lr_all = torch.from_numpy(np.stack(lr_list)).permute(0, 3, 1, 2).contiguous() if lr_list else None
    parts = []
    for k, idx in enumerate(split_indices(len(hr_all), data)):
        idx = torch.from_numpy(np.sort(idx))
        training = k == 0
        parts.append(SRImages(hr_all[idx], lr_all[idx] if lr_all is not None else None, [names[i] for i in idx.tolist()],
                              scale, sr.degradation, sr.patch_size, sr.patches_per_epoch if training else 0,
                              sr.augment and training))
    if not parts[0].num_images:
        raise ValueError(f"data.dataset: all {len(hr_all)} images are held out; lower data.val_fraction / data.test_fraction")
    return DatasetSplits(*parts, class_names=[], skipped=skipped)
