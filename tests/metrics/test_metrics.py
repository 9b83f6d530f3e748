"""FD and KID against scipy/numpy references, the offline extractors' ranking, and the real-feature cache."""
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from pipelines.config import DataConfig
from pipelines.data import load_splits
from pipelines.metrics.distance import extract, frechet_distance, kernel_distance, real_features
from pipelines.metrics.extractors import choose_extractor, load_extractor, metric_label, train_digits_cnn


def reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))


def reference_kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3 of Binkowski et al."""
    d, m = a.shape[1], len(a)
    kxx, kyy, kxy = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    off = ~np.eye(m, dtype=bool)
    return float(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())


def test_fd_and_kid_match_scipy_references():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 12))
    b = rng.normal(loc=0.3, scale=1.2, size=(400, 12)) @ rng.normal(size=(12, 12)) * 0.5
    fd = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert fd == pytest.approx(reference_fd(a, b), rel=1e-6)
    kid, _ = kernel_distance(torch.from_numpy(a), torch.from_numpy(b), subset_size=400, subsets=1)
    assert kid == pytest.approx(reference_kid(a, b), rel=1e-6)


def test_kid_subsets_shrink_to_small_counts():
    rng = np.random.default_rng(1)
    a, b = torch.from_numpy(rng.normal(size=(30, 4))), torch.from_numpy(rng.normal(size=(50, 4)) + 1)
    mean, std = kernel_distance(a, b, subset_size=1000)  # torchmetrics alone refuses subsets larger than the sets
    assert mean > 0 and std >= 0


def blur(images: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None]) / 16
    c = images.shape[1]
    out = F.conv2d(F.pad(images.float(), (1, 1, 1, 1), mode="replicate"), k.expand(c, 1, 3, 3), groups=c)
    return out.round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("extractor,dataset,size,channels", [
    ("digits-cnn", "digits", 16, 1), ("hog-colour", "digits", 16, 1), ("hog-colour", "photos", 32, 3),
    ("photo-cnn", "photos", 32, 3)])
def test_offline_extractors_rank_real_blurred_noise(extractor, dataset, size, channels, tmp_path):
    splits = load_splits(DataConfig(dataset=dataset, image_size=size, channels=channels, val_fraction=0, test_fraction=0,
                                    synthetic_count=1600))
    images = splits.train.all_images()[torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))]
    half = len(images) // 2
    first, second = images[:half], images[half:2 * half]
    model = load_extractor(extractor, tmp_path)
    real = extract(model, first)
    noise = torch.randint(0, 256, second.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fd = {name: frechet_distance(real, extract(model, imgs)) for name, imgs in
          [("other half", second), ("blurred", blur(second)), ("noise", noise)]}
    assert fd["other half"] < fd["blurred"] < fd["noise"], fd
    assert fd["other half"] < 0.6 * fd["blurred"], fd  # two halves of the real data are close
    assert fd["noise"] > 5 * fd["blurred"], fd


def test_shipped_digits_cnn_recognises_digits_and_can_be_retrained(tmp_path):
    splits = load_splits(DataConfig(dataset="digits", image_size=16, channels=1, val_fraction=0, test_fraction=0))
    model = load_extractor("digits-cnn", tmp_path)
    with torch.no_grad():
        predicted = model.head(model.body(model.prepare(splits.train.all_images()))).argmax(1)
    assert (predicted == splits.train.labels).float().mean() > 0.97
    _, held_out_accuracy = train_digits_cnn(epochs=3)
    assert held_out_accuracy > 0.85


def test_auto_extractor_and_clear_errors(tmp_path, monkeypatch):
    import importlib.util

    from pipelines.metrics import extractors

    cache = tmp_path / "ws" / "cache"
    monkeypatch.delenv("STUDIO_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch_fidelity" else real_find_spec(name))
    assert choose_extractor("auto", "digits", cache) == "digits-cnn"
    assert choose_extractor("auto", "photos", cache) == "hog-colour"
    with pytest.raises(ValueError, match="torch-fidelity"):
        load_extractor("inception", cache)
    with pytest.raises(ValueError, match="unknown 'vgg'"):
        load_extractor("vgg", cache)
    # With the package and the weights file in the workspace's weights/ folder, auto means the real FID.
    weights = tmp_path / "ws" / "weights" / extractors.INCEPTION_FILES[0]
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    assert choose_extractor("auto", "photos", cache) == "hog-colour"  # still no torch-fidelity
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "torch_fidelity" else real_find_spec(name))
    assert choose_extractor("auto", "digits", cache) == "inception" and extractors.inception_weights(cache) == weights
    assert metric_label("inception") == "FID" and metric_label("hog-colour") == "FD (hog-colour)"


def test_real_features_are_cached_per_split_and_extractor(tmp_path, monkeypatch):
    from pipelines.metrics import distance

    cfg = DataConfig(dataset="digits", image_size=16, channels=1)
    splits = load_splits(cfg)
    model = load_extractor("hog-colour", tmp_path)
    calls = []
    real_extract = distance.extract
    monkeypatch.setattr(distance, "extract", lambda m, images: calls.append(len(images)) or real_extract(m, images))
    first = real_features(tmp_path, splits.train, "digits", "train", model, 10_000)
    again = real_features(tmp_path, splits.train, "digits", "train", model, 10_000)
    test = real_features(tmp_path, splits.test, "digits", "test", model, 10_000)
    assert sum(calls) == len(splits.train) + len(splits.test)  # the second call read the cache
    assert torch.equal(first, again) and len(test) == len(splits.test)
    names = sorted(p.name for p in (tmp_path / "real-features").iterdir())
    assert len(names) == 2 and names[0].startswith("digits_test_16px_hog-colour") and names[1].startswith("digits_train_16px_hog-colour")
    changed = splits.train.all_images()
    changed[0] = 255 - changed[0]  # one image differs: another entry, not stale features
    real_features(tmp_path, changed, "digits", "train", model, 10_000)
    assert len(list((tmp_path / "real-features").iterdir())) == 3 and sum(calls) == 2 * len(splits.train) + len(splits.test)
