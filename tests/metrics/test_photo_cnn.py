"""photo-cnn, the offline photo extractor: the shipped weights are the measured ones and give the same features on
every machine; `auto` picks it for colour photos near 32 px when the Inception is absent, and the figure is named
after it in the evaluation and the model card; its training script runs end to end on a folder of class folders."""
import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.metrics.distance import extract
from pipelines.metrics.extractors import choose_extractor, load_extractor
from pipelines.metrics.photo_cnn import PHOTO_CNN_FILE, load_photo_cnn, save_photo_cnn, train_photo_cnn

# The shipped file (retrained by `python -m pipelines.metrics.photo_cnn DATASET`: then record it and the features anew).
WEIGHTS_SHA256 = "6ea5d6fd6ae0a7c36de23ef3a4c87ccf26658c197f33c393c938790e008dbf46"
# Features 0-5 of the four fixed images below, computed in float32 on the CPU when the weights were made.
RECORDED_FEATURES = [
    [1.070961, 0.4724817, 0.3105684, 0, 1.145762, 0.6945236],
    [0.899283, 0.3666452, 0.210818, 0.169207, 0.8764833, 0.4766116],
    [1.200396, 0.5775437, 0.0009227638, 0.2483917, 0.5080718, 0.3781034],
    [0.5977263, 0.81778, 0, 0.2006147, 0.5279935, 0.7634603],
]
RECORDED_SUMS = [87.815912, 93.70885, 97.845066, 96.89878]


def fixed_images() -> torch.Tensor:
    """Four 32 x 32 colour images from integer arithmetic alone (no RNG, no files): the same bytes everywhere."""
    n, c, h, w = torch.meshgrid(torch.arange(4), torch.arange(3), torch.arange(32), torch.arange(32), indexing="ij")
    return ((h * (n + 3) + w * (c + 5) * (n + 1) + 37 * n * c + (h // 8 + w // 8) * 29 * (c + 1)) % 256).to(torch.uint8)


def test_shipped_weights_are_the_measured_ones_and_give_recorded_features(tmp_path):
    assert hashlib.sha256(PHOTO_CNN_FILE.read_bytes()).hexdigest() == WEIGHTS_SHA256
    assert PHOTO_CNN_FILE.stat().st_size < 2_000_000
    model = load_extractor("photo-cnn", tmp_path)
    assert not model.training and model.num_features == 192
    assert model.fingerprint == "photo-cnn-" + hashlib.sha1(PHOTO_CNN_FILE.read_bytes()).hexdigest()[:10]
    features = extract(model, fixed_images())
    assert features.shape == (4, 192) and features.dtype == torch.float64
    np.testing.assert_allclose(features[:, :6].numpy(), RECORDED_FEATURES, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(features.sum(1).numpy(), RECORDED_SUMS, rtol=1e-4)
    # An image's features do not depend on its batch (eval mode), nor on the layout it comes in.
    alone = extract(model, fixed_images()[2:3])
    torch.testing.assert_close(alone[0], features[2], rtol=1e-4, atol=1e-5)
    as_arrays = extract(model, fixed_images().permute(0, 2, 3, 1).numpy())
    torch.testing.assert_close(as_arrays, features)
    # Grayscale and other sizes are taken (as three equal channels, resized to 32 px).
    assert extract(model, fixed_images()[:, :1]).shape == (4, 192)
    assert extract(model, fixed_images().repeat(1, 1, 2, 2)).shape == (4, 192)


def test_auto_picks_photo_cnn_for_colour_photos_near_32_px(tmp_path, monkeypatch):
    cache = tmp_path / "ws" / "cache"
    monkeypatch.delenv("STUDIO_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch_fidelity" else real_find_spec(name))
    for shape in [(3, 32, 32), (3, 24, 24), (3, 64, 64)]:
        assert choose_extractor("auto", "/data/cifar10/train", cache, shape) == "photo-cnn", shape
    for shape in [(3, 16, 16), (3, 128, 128), (1, 32, 32), None]:
        assert choose_extractor("auto", "/data/pictures", cache, shape) == "hog-colour", shape
    assert choose_extractor("auto", "digits", cache, (3, 32, 32)) == "digits-cnn"
    assert choose_extractor("photo-cnn", "digits", cache, (1, 16, 16)) == "photo-cnn"  # asked for by name
    # Where the Inception can be had, it stays the default.
    weights = tmp_path / "ws" / "weights" / "weights-inception-2015-12-05-6726825d.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "torch_fidelity" else real_find_spec(name))
    assert choose_extractor("auto", "/data/cifar10/train", cache, (3, 32, 32)) == "inception"


def test_evaluation_and_card_name_photo_cnn(tmp_path, monkeypatch):
    from pipelines.ecosystem.cards import CardContent, Score, render
    from pipelines.metrics.evaluate import Scorer

    monkeypatch.delenv("STUDIO_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch_fidelity" else real_find_spec(name))
    generator = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    scorer = Scorer("/data/cifar10/train", real, "train", "auto", tmp_path / "cache", kid_subset_size=32)
    assert scorer.extractor_name == "photo-cnn"
    def grey(n, seed):  # flat grey "samples"
        return np.full((n, 32, 32, 3), 128, np.uint8)

    result = scorer.score(grey, 32, batch_size=16)
    assert result.label == "FD (photo-cnn)" and result.fd > 0 and result.summary().startswith("FD (photo-cnn) ")
    name = f"photo-cnn, {result.num_samples} samples vs {result.num_real} train images"
    card = render(CardContent("r", "final", "ddpm", {"step": 10, "epoch": 1}, "name: r\n", "/data/cifar10/train", 32,
                              "cpu", "no", 60.0, [Score("fd", f"FD ({name})", result.fd, "train", 10, "during training")]))
    assert f"| FD ({name}) |" in card and "`photo-cnn`: the studio's small CIFAR-10 photo classifier" in card
    assert "not comparable with published FIDs" in card


def test_training_script_learns_a_folder_of_classes(tmp_path):
    """The CIFAR-10 recipe on ten folders of coloured, noisy squares: it learns them, and the saved file loads."""
    rng = np.random.default_rng(0)
    colours = [(r, g, b) for r in (40, 215) for g in (40, 215) for b in (40, 215)] + [(128, 128, 128), (250, 120, 0)]
    for label, colour in enumerate(colours):
        folder = tmp_path / "data" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(24):
            pixels = np.clip(rng.normal(colour, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    model, accuracy = train_photo_cnn(tmp_path / "data", epochs=4, held_out=40, batch_size=20, log=lambda _: None)
    assert accuracy > 0.5  # ten classes: chance is 0.1
    save_photo_cnn(model, tmp_path / "photo_cnn.safetensors")
    loaded = load_photo_cnn(tmp_path / "photo_cnn.safetensors")
    images = fixed_images()
    torch.testing.assert_close(extract(loaded, images), extract(model, images), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="has 0 class folders; expected CIFAR-10.s 10"):
        train_photo_cnn(tmp_path / "data" / "class0", epochs=1)
