"""DreamBooth's prior preservation: class images trained beside the instance images, so that fine-tuning on a few
photos of one subject ("a photo of sks dog") does not make every dog that subject.

`dreambooth.class_data` is a folder of class images. When it holds fewer usable images than
`dreambooth.num_class_images`, the missing ones are generated into it once, before training, from
`dreambooth.class_prompt` with the pretrained Stable Diffusion pipeline itself (`model.pretrained`), as diffusers'
`train_dreambooth.py` does; later runs find them there. The folder is prepared like any dataset (cached, unusable
files skipped and counted in the run's log). Each training batch pairs its instance images with as many class images,
and the loss is instance loss + `dreambooth.prior_loss_weight` x class loss.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ...data import StopRequested, prepare
from ...data.dataset import DatasetSplits, ImageDataset
from ...data.folder import image_folder
from .stable_diffusion import check_objective, pipeline_folder

FIELD = "dreambooth.class_data"
GENERATING = "generating class images"
BATCH = 4  # images per call of the pipeline while generating (as train_dreambooth.py's sample_batch_size)


@dataclass
class DreamBoothSplits(DatasetSplits):
    class_images: ImageDataset | None = None  # prior preservation's class images (all used for training)


def uses_prior(config) -> bool:
    return bool(config.dreambooth.class_data)


def with_class_images(splits: DatasetSplits, config, workspace, progress=None, should_stop=None) -> DatasetSplits:
    """`splits` with the class images of prior preservation (generated first when too few); as they were without it."""
    if not uses_prior(config):
        return splits
    images, skipped = class_images(config, workspace, progress, should_stop)
    folder = Path(config.dreambooth.class_data).expanduser()
    # Their unusable files are listed with the data's (the run's log names and counts them), by their full path.
    skipped = [*splits.skipped, *((str(folder / name), reason) for name, reason in skipped)]
    parts = {f.name: getattr(splits, f.name) for f in fields(DatasetSplits)}
    return DreamBoothSplits(**{**parts, "skipped": skipped}, class_images=images)


def class_images(config, workspace, progress=None, should_stop=None) -> tuple[ImageDataset, list[tuple[str, str]]]:
    """`num_class_images` usable class images (a seeded choice when the folder holds more), and the files skipped."""
    db = config.dreambooth
    folder = Path(db.class_data).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{FIELD}: {db.class_data} is a file; give a folder of class images (or one to generate them into)")
    prepared = read_folder(folder, config, workspace, progress, should_stop)
    usable = len(prepared) if prepared is not None else 0
    if usable < db.num_class_images:
        pipeline = generator_pipeline(config, folder, usable)
        generate_class_images(pipeline, db.class_prompt, folder, db.num_class_images - usable, config, progress,
                              should_stop)
        prepared = read_folder(folder, config, workspace, progress, should_stop)
        if prepared is None or len(prepared) < db.num_class_images:  # (generated images are never unusable)
            raise ValueError(f"{FIELD}: {folder} holds {len(prepared) if prepared else 0} usable class images after "
                             f"generating, not the {db.num_class_images} of dreambooth.num_class_images")
    rows = np.sort(np.random.default_rng(config.data.split_seed).permutation(len(prepared))[:db.num_class_images])
    chosen = ImageDataset.rows_of(prepared, rows)
    chosen.captions = [db.class_prompt] * len(rows)  # the class prompt, whatever captions the folder has
    return chosen, prepared.skipped


def read_folder(folder: Path, config, workspace, progress, should_stop):
    """The folder prepared at the data's size and channels (None while it holds no image file)."""
    if not folder.is_dir() or not image_folder(folder).records:
        return None
    data = config.data.model_copy(update={"dataset": str(folder), "num_samples": None})
    return prepare(data, workspace, progress, should_stop)


def generator_pipeline(config, folder: Path, usable: int) -> Path:
    """The Stable Diffusion pipeline folder that generates the missing class images into `folder` (created); refuses
    when there is none, or the folder cannot be written."""
    db = config.dreambooth
    pipeline = pipeline_folder(config.model.pretrained)
    if pipeline is None:
        raise ValueError(f"{FIELD}: {db.class_data} holds {usable} usable class images, fewer than "
                         f"dreambooth.num_class_images {db.num_class_images}, and only a whole Stable Diffusion "
                         "pipeline as model.pretrained can generate the rest; add class images or lower num_class_images")
    check_objective(config)  # before generating for a run that would then be refused
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{FIELD}: cannot write the class images into {db.class_data} ({exc.strerror or exc})") from None
    return pipeline


def free_numbers(folder: Path, count: int) -> list[int]:
    """`count` numbers n whose file class-<n>.png is not taken yet, from 0 up."""
    numbers, n = [], 0
    while len(numbers) < count:
        if not class_file(folder, n).exists():
            numbers.append(n)
        n += 1
    return numbers


def class_file(folder: Path, number: int) -> Path:
    return folder / f"class-{number:05d}.png"


def generate_class_images(pipeline_dir: Path, prompt: str, folder: Path, count: int, config, progress=None,
                          should_stop=None) -> None:
    """`count` images of `prompt` from the stock diffusers pipeline at its own resolution (the data loader resizes
    them) and its default steps and guidance, as train_dreambooth.py makes them. class-<n>.png comes from seed
    training.seed + n, so images added later (a larger num_class_images) are new ones. Each file appears whole
    (written aside, then renamed)."""
    from accelerate import PartialState
    from diffusers import StableDiffusionPipeline

    from ...train.precision import DTYPES, resolve_mixed_precision

    device = PartialState().device
    dtype = DTYPES.get(resolve_mixed_precision(config.training.mixed_precision), torch.float32)
    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, torch_dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    numbers, start, task = free_numbers(folder, count), time.perf_counter(), f"{GENERATING} of '{prompt}'"
    if progress is not None:
        progress(0, count, 0.0, task)
    try:
        for first in range(0, count, BATCH):
            if should_stop is not None and should_stop():
                raise StopRequested("stopped while generating class images")
            batch = numbers[first:first + BATCH]
            generators = [torch.Generator(device).manual_seed(config.training.seed + n) for n in batch]
            images = pipe([prompt] * len(batch), generator=generators).images
            for image, n in zip(images, batch):
                path = class_file(folder, n)
                part = path.with_name(f".{path.name}.part")  # a hidden name: the folder's readers pass it by
                image.save(part, format="PNG")
                part.replace(path)
            if progress is not None:
                done = first + len(batch)
                progress(done, count, done / max(time.perf_counter() - start, 1e-9), task)
    finally:
        del pipe
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def pick_class_rows(num_class_images: int, count: int) -> torch.Tensor:
    """`count` class-image indices for a batch: a random permutation (repeated when the batch is larger), from the
    global RNG, which checkpoints restore, so a resumed run draws what an uninterrupted one would."""
    rounds = -(-count // num_class_images)
    return torch.cat([torch.randperm(num_class_images) for _ in range(rounds)])[:count]


def prior_preservation_loss(per_image: torch.Tensor, instances: int, weight: float) -> tuple[torch.Tensor, dict]:
    """Instance loss + weight x class loss, from the per-image losses of a batch whose first `instances` images are
    the instance images and the rest class images."""
    instance, prior = per_image[:instances].mean(), per_image[instances:].mean()
    return instance + weight * prior, {"instance_loss": instance.item(), "prior_loss": prior.item()}
