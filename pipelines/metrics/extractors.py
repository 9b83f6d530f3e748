"""Feature extractors for Fréchet distance and KID. Each maps uint8 N x C x H x W images to N x D features.

- `inception`: the standard FID network (torchmetrics' port of the TF Inception, 2048-d pool features).
  It needs the `torch-fidelity` package and its weights file; only its figure is called FID.
- `digits-cnn`: a small classifier trained on four fifths of scikit-learn's digits; its 64-d penultimate layer knows what a
  digit looks like, so its distance tracks digit quality. Its weights ship with the code
  (`digits_cnn.safetensors`, made by `python -m pipelines.metrics.extractors`), so that the same figure
  means the same thing on every machine.
- `photo-cnn`: a small CIFAR-10 classifier (`photo_cnn.py`), its 192-d penultimate layer: the offline measure for
  32 px photos, shipped as `photo_cnn.safetensors` like digits-cnn's weights.
- `hog-colour`: weightless image statistics for any data: gradient-orientation histograms on a 4 x 4 grid
  (shape and edge layout) and the mean colour of each cell (colour layout).
"""
from __future__ import annotations

import importlib.util
import os
import typing
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EXTRACTOR_NAMES
from . import metric_label  # noqa: F401  (re-exported: the evaluation names its metric)
from .photo_cnn import load_photo_cnn, suits

INCEPTION_FILES = ("weights-inception-2015-12-05-6726825d.pth",)  # torch-fidelity's name for the FID Inception


class HogColour(nn.Module):
    name, num_features = "hog-colour", 9 * 16 + 3 * 16
    fingerprint = "hog-colour-1"  # change it when the features change: cached real features depend on it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        gray = x.mean(1, keepdim=True)
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        kernels = torch.stack([sobel, sobel.T])[:, None].to(x)
        gx, gy = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels).unbind(1)
        angle = torch.atan2(gy, gx) % torch.pi  # unsigned orientation, as HOG
        bins = (angle / torch.pi * 9).long().clamp(max=8)
        energy = F.one_hot(bins, 9).permute(0, 3, 1, 2) * (gx ** 2 + gy ** 2)[:, None]
        # Root-mean-square gradient per orientation and cell: blur lowers it (a mean |gradient| would not
        # notice blur, which spreads an edge without changing its total rise).
        cells = F.avg_pool2d(energy, 8).sqrt().flatten(1)
        colour = F.avg_pool2d(x, 8).flatten(1)
        return torch.cat([cells, colour], dim=1)


class DigitsCNN(nn.Module):
    """A digit classifier on 16 x 16 grayscale; `forward` returns the 64-d features before the class layer."""
    name, num_features = "digits-cnn", 64

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 16, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)
        # Features are divided by their RMS on real digits, so that KID's polynomial kernel sees values near 1.
        self.register_buffer("scale", torch.ones(()))

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1.0
        x = x.mean(1, keepdim=True) if x.shape[1] != 1 else x
        if x.shape[-1] != 16:
            x = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images)) / self.scale


def train_digits_cnn(epochs: int = 15, seed: int = 0) -> tuple[DigitsCNN, float]:
    """Train the digits classifier on four fifths of the 1,797 scikit-learn digits (with one-pixel shifts);
    returns it and its accuracy on the fifth it did not train on (about 0.98)."""
    from ..data.builtin import digits
    from ..data.transforms import preprocess
    import numpy as np

    source = digits(0, 0)
    images = torch.from_numpy(np.stack([preprocess(r.image, 16, 1, "bicubic", True) for r in source.records])).permute(0, 3, 1, 2)
    labels = torch.tensor([r.label for r in source.records])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.randperm(len(images))
        held, used = order[: len(order) // 5], order[len(order) // 5:]
        model = DigitsCNN()
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _ in range(epochs):
            for batch in used[torch.randperm(len(used))].split(64):
                x = DigitsCNN.prepare(images[batch])
                dx, dy = torch.randint(-1, 2, (2,)).tolist()
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
                loss = F.cross_entropy(model.head(model.body(x)), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            model.scale.fill_(model(images).pow(2).mean().sqrt().item())
            accuracy = (model.head(model.body(DigitsCNN.prepare(images[held]))).argmax(1) == labels[held]).float().mean().item()
    return model, accuracy


DIGITS_CNN_FILE = Path(__file__).with_name("digits_cnn.safetensors")


def load_digits_cnn() -> DigitsCNN:
    import hashlib

    from safetensors.torch import load_file

    model = DigitsCNN()
    model.load_state_dict(load_file(DIGITS_CNN_FILE))
    model.fingerprint = "digits-cnn-" + hashlib.sha1(DIGITS_CNN_FILE.read_bytes()).hexdigest()[:10]
    return model.eval()


class Inception(nn.Module):
    name, num_features = "inception", 2048
    fingerprint = "inception-2015-12-05"

    def __init__(self, weights: Path | None):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=str(weights) if weights else None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images)


def inception_weights(cache_dir: Path) -> Path | None:
    """The FID Inception weights file, if it is on this machine: $STUDIO_INCEPTION_WEIGHTS, the workspace's
    weights/ folder, or torch's hub cache where torch-fidelity downloads it."""
    env = os.environ.get("STUDIO_INCEPTION_WEIGHTS")
    if env:
        return Path(env) if Path(env).is_file() else None
    folders = [cache_dir.parent / "weights", Path(torch.hub.get_dir()) / "checkpoints"]
    return next((f / name for f in folders for name in INCEPTION_FILES if (f / name).is_file()), None)


def inception_available(cache_dir: Path) -> bool:
    return importlib.util.find_spec("torch_fidelity") is not None and inception_weights(cache_dir) is not None


EXTRACTORS = typing.get_args(EXTRACTOR_NAMES)[1:]  # after "auto"
TORCH_FIDELITY_MISSING = ("needs the torch-fidelity package and its weights (pip install torch-fidelity; see README); "
                          "offline, use digits-cnn, photo-cnn or hog-colour")


def check_extractor(config) -> None:
    """Refuse, before a run is queued, an Inception this machine cannot load."""
    from ..config import ConfigError

    e = config.evaluation
    if e.every_epochs and getattr(e, "extractor", None) == "inception" and importlib.util.find_spec("torch_fidelity") is None:
        raise ConfigError([("evaluation.extractor", f"inception {TORCH_FIDELITY_MISSING}")])


def choose_extractor(requested: str, dataset: str, cache_dir: Path, image_shape: tuple[int, ...] | None = None) -> str:
    """`auto`: the Inception where it can be had, else digits-cnn on digits, photo-cnn on colour images of
    24-64 px (C x H x W `image_shape`; resized to its 32 px), and hog-colour elsewhere."""
    if requested != "auto":
        return requested
    if inception_available(cache_dir):
        return "inception"
    if dataset == "digits":
        return "digits-cnn"
    return "photo-cnn" if image_shape is not None and suits(image_shape) else "hog-colour"


def load_extractor(name: str, cache_dir: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The extractor `name`, in eval mode on `device`; the Inception weights are looked for beside
    `cache_dir` (the workspace's weights/ folder)."""
    cache_dir = Path(cache_dir)
    if name == "hog-colour":
        model = HogColour()
    elif name == "digits-cnn":
        model = load_digits_cnn()
    elif name == "photo-cnn":
        model = load_photo_cnn()
    elif name == "inception":
        if importlib.util.find_spec("torch_fidelity") is None:
            raise ValueError(f"extractor: inception {TORCH_FIDELITY_MISSING}")
        # Without a local file torch-fidelity downloads the weights (a machine with a network).
        model = Inception(inception_weights(cache_dir))
    else:
        raise ValueError(f"extractor: unknown {name!r}; allowed: auto, {', '.join(EXTRACTORS)}")
    return model.to(device).eval()


if __name__ == "__main__":
    from safetensors.torch import save_file

    trained, held_out_accuracy = train_digits_cnn()
    save_file(trained.state_dict(), DIGITS_CNN_FILE)
    print(f"wrote {DIGITS_CNN_FILE} (accuracy on held-back digits {held_out_accuracy:.3f})")
