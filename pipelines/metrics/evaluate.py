"""Scoring generated images against a split's real images, during training and for saved checkpoints."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..sample.request import Cancelled
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
    diversity: float = 0.0  # mean pairwise feature distance of the first samples (fixed seeds)
    real_diversity: float = 0.0  # the same for as many real images

    @property
    def label(self) -> str:
        return metric_label(self.extractor)

    def summary(self) -> str:
        return (f"{self.label} {self.fd:.4g} · KID {self.kid:.4g} ± {self.kid_std:.2g} · {self.num_samples} samples vs "
                f"{self.num_real} {self.split} images · {self.seconds:.0f} s")

    def record(self) -> dict:
        """The fields the run store's evaluations table keeps."""
        return {k: v for k, v in asdict(self).items() if k not in ("diversity", "real_diversity")}


class Scorer:
    """Real features of one split (cached on disk) and the extractor, loaded once for many evaluations."""

    def __init__(self, dataset: str, images, split: str, extractor: str, cache_dir: str | Path,
                 device: torch.device | str = "cpu", kid_subset_size: int = 1000, field: str = "evaluation.split",
                 should_stop: Callable[[], bool] | None = None):
        from ..data import dataset_slug

        if len(images) == 0:
            raise ValueError(f"{field}: the {split} split of {dataset} is empty (raise data.{split}_fraction, "
                             "or compare with another split)")
        self.split, self.kid_subset_size = split, kid_subset_size
        shape = images.image_shape if hasattr(images, "image_shape") else tuple(images.shape[1:])
        self.extractor_name = choose_extractor(extractor, dataset, Path(cache_dir), shape)
        self.extractor = load_extractor(self.extractor_name, cache_dir, device)
        self.real = real_features(cache_dir, images, dataset_slug(dataset), split, self.extractor, REAL_CAP,
                                  should_stop=should_stop)

    def score(self, sample: Callable[[int, int], np.ndarray], num: int, batch_size: int = 256,
              progress: bool = False, report: Callable[[int, int], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> Evaluation:
        """`sample(n, seed)` gives n uint8 N x H x W x C images; seeds continue across batches, so an evaluation
        always sees the same starting noise and successive evaluations differ only by the model. `report(done, num)`
        after each batch (the run store's phase); `should_stop()` before each (Cancelled: a person's stop)."""
        from tqdm.auto import tqdm

        start = time.perf_counter()
        starts = range(0, num, batch_size)
        feats = []
        with torch.random.fork_rng(devices=[]):  # leave the training RNG where it was
            for i in tqdm(starts, desc="sampling", unit="batch", disable=not progress):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"stopped after {i:,} of {num:,} evaluation samples")
                feats.append(extract(self.extractor, sample(min(batch_size, num - i), i)))
                if report is not None:
                    report(min(i + batch_size, num), num)
        fake = torch.cat(feats)
        scores = distances(self.real, fake, self.kid_subset_size)
        return Evaluation(self.extractor_name, self.split, num, len(self.real), scores["fd"], scores["kid"],
                          scores["kid_std"], time.perf_counter() - start, diversity(fake), diversity(self.real))


def diversity(features: torch.Tensor, n: int = 200) -> float:
    """Mean distance between two different images' features, over the first n: collapse drives it to 0."""
    f = features[:n]
    return float(torch.cdist(f, f).sum() / max(len(f) * (len(f) - 1), 1))


def _progress_bar():
    from ..data.progress import PreparationBar

    return PreparationBar()


def checkpoint_sampler(path: Path, sampler: str, steps: int, device,
                       should_stop: Callable[[], bool] | None = None) -> Callable[[int, int], np.ndarray]:
    """`sample(n, seed)` for a saved checkpoint of any generating family (`should_stop()` asked at every sampler step)."""
    from ..sample.models import load_model, sample_model
    from ..sample.request import SampleRequest

    model = load_model(path, device)
    request = SampleRequest(sampler, steps, guidance=2.0 if model.num_classes else 1.0)  # as the run's own sample grids
    callback = None if should_stop is None else lambda info: not should_stop()  # False cancels the sampler
    return lambda n, seed: sample_model(model, request.but(num=n, seed=seed, batch_size=n), callback)


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", num: int = 2000, extractor: str = "auto",
                        sampler: str = "dpm++", steps: int = 20, batch_size: int = 256, device: str | None = None,
                        record: bool = True, progress: bool = False, split_field: str = "--split",
                        report: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> Evaluation:
    """FD/KID of a run's checkpoint against a split of the run's own data; recorded in the run store
    (kind "final") when the run is in one. `should_stop()`: asked during feature extraction and sampling (a person's
    stop raises StopRequested or Cancelled)."""
    from ..checkpoints import read_meta
    from ..config import load_config
    from ..data import load_splits
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
    images = getattr(load_splits(config.data, workspace, progress=_progress_bar() if progress else None), split)
    scorer = Scorer(config.data.dataset, images, split, extractor, workspace / "cache", device,
                    config.evaluation.kid_subset_size, split_field, should_stop)
    result = scorer.score(checkpoint_sampler(path, sampler, steps, device, should_stop), num, batch_size, progress, report,
                          should_stop)
    store_file = workspace / RunStore.FILENAME
    if record and store_file.exists():
        store = RunStore(workspace)
        if store.exists(run_folder.name):
            meta = read_meta(path) or {}
            store.log_evaluation(run_folder.name, step=meta.get("step", 0), epoch=meta.get("epoch", 0), kind="final",
                                 checkpoint=path.name, **result.record())
    return result
