"""Scoring generated images against a split's real images, during training and for saved checkpoints."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .distance import distances, extract, real_features
from .extractors import choose_extractor, load_extractor, metric_label

REAL_CAP = 10_000  # real images per split at most (all of them for the built-in sets)


@dataclass
class Evaluation:
    extractor: str
    split: str
    num_samples: int
    num_real: int
    fd: float
    kid: float
    kid_std: float
    seconds: float

    @property
    def label(self) -> str:
        return metric_label(self.extractor)

    def summary(self) -> str:
        return (f"{self.label} {self.fd:.4g} · KID {self.kid:.4g} ± {self.kid_std:.2g} · {self.num_samples} samples vs "
                f"{self.num_real} {self.split} images · {self.seconds:.0f} s")

    def record(self) -> dict:
        return asdict(self)


class Scorer:
    """Real features of one split (cached on disk) and the extractor, loaded once for many evaluations."""

    def __init__(self, data_cfg, split: str, extractor: str, cache_dir: str | Path, split_images: Callable[[], torch.Tensor],
                 device: torch.device | str = "cpu", kid_subset_size: int = 1000):
        self.split, self.kid_subset_size = split, kid_subset_size
        self.extractor_name = choose_extractor(extractor, data_cfg.dataset, Path(cache_dir))
        self.extractor = load_extractor(self.extractor_name, cache_dir, device)
        self.real = real_features(cache_dir, data_cfg, split, self.extractor_name, self.extractor, REAL_CAP, split_images)

    def score(self, sample: Callable[[int, int], np.ndarray], num: int, batch_size: int = 256,
              progress: bool = False) -> Evaluation:
        """`sample(n, seed)` gives n uint8 N x H x W x C images; seeds continue across batches, so an evaluation
        always sees the same starting noise and successive evaluations differ only by the model."""
        start = time.perf_counter()
        from tqdm.auto import tqdm

        starts = range(0, num, batch_size)
        with torch.random.fork_rng(devices=[]):  # leave the training RNG where it was
            feats = [extract(self.extractor, sample(min(batch_size, num - i), i))
                     for i in tqdm(starts, desc="sampling", unit="batch", disable=not progress)]
        scores = distances(self.real, torch.cat(feats), self.kid_subset_size)
        return Evaluation(self.extractor_name, self.split, num, len(self.real), scores["fd"], scores["kid"],
                          scores["kid_std"], time.perf_counter() - start)


def split_of(data_cfg, split: str) -> Callable[[], torch.Tensor]:
    def images() -> torch.Tensor:
        from ..data import load_splits

        return getattr(load_splits(data_cfg), split).images
    return images


def checkpoint_sampler(path: Path, sampler: str, steps: int, device) -> Callable[[int, int], np.ndarray]:
    """`sample(n, seed)` for a saved checkpoint, by its family (later families add theirs here)."""
    from ..checkpoints import read_meta
    from ..sample.generate import generate, load_diffusion

    family = (read_meta(path) or {}).get("family", "ddpm")
    if family != "ddpm":
        raise ValueError(f"checkpoint: evaluating {family} checkpoints is not supported yet")
    model = load_diffusion(path, device)
    guidance = 2.0 if model.num_classes else 1.0  # as the run's own sample grids
    return lambda n, seed: generate(model, sampler, steps, n, seed, guidance=guidance, batch_size=n)


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", num: int = 2000, extractor: str = "auto",
                        sampler: str = "dpm++", steps: int = 20, batch_size: int = 256, device: str | None = None,
                        record: bool = True, progress: bool = False) -> Evaluation:
    """FD/KID of a run's checkpoint against a split of the run's own data; recorded in the run store
    (kind "final") when the run is in one."""
    from ..checkpoints import read_meta
    from ..config import load_config
    from ..store import RunStore

    path = Path(checkpoint).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint: {checkpoint} is not a folder")
    run_folder = path.parent
    if not (run_folder / "config.yaml").exists():
        raise FileNotFoundError(f"checkpoint: {path} is not inside a studio run folder (no config.yaml beside it): "
                                "the data it was trained on is unknown")
    config = load_config(run_folder / "config.yaml")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    workspace = run_folder.parent
    scorer = Scorer(config.data, split, extractor, workspace / "cache", split_of(config.data, split), device,
                    config.evaluation.kid_subset_size)
    result = scorer.score(checkpoint_sampler(path, sampler, steps, device), num, batch_size, progress)
    store_file = workspace / RunStore.FILENAME
    if record and store_file.exists():
        store = RunStore(workspace)
        if store.exists(run_folder.name):
            meta = read_meta(path) or {}
            store.log_evaluation(run_folder.name, step=meta.get("step", 0), epoch=meta.get("epoch", 0), kind="final",
                                 checkpoint=path.name, **{k: v for k, v in result.record().items()})
    return result
