"""VGG19 features for the perceptual loss, with torchvision's parameter names (torchvision itself cannot be
installed next to this torch build), so its `vgg19-dcbb9e9d.pth` loads with weights_only."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
VGG19_FILES = ("vgg19-dcbb9e9d.pth",)
# Real-ESRGAN's perceptual layers (before their ReLU) and weights: conv1_2, conv2_2, conv3_4, conv4_4, conv5_4.
LAYER_WEIGHTS = {2: 0.1, 7: 0.1, 16: 1.0, 25: 1.0, 34: 1.0}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def vgg19_features(last: int = 34) -> nn.Sequential:
    layers, channels = [], 3
    for v in VGG19_LAYOUT:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=False)]
            channels = v
    return nn.Sequential(*layers[:last + 1])


def find_vgg_weights(explicit: str | None, workspace: Path | None) -> Path | None:
    """The VGG19 weights file: the configured one, $STUDIO_VGG_WEIGHTS, <workspace>/weights/, or torch's hub cache."""
    if explicit:
        return Path(explicit).expanduser() if Path(explicit).expanduser().is_file() else None
    env = os.environ.get("STUDIO_VGG_WEIGHTS")
    if env:
        return Path(env) if Path(env).is_file() else None
    folders = ([workspace / "weights"] if workspace else []) + [Path(torch.hub.get_dir()) / "checkpoints"]
    return next((f / name for f in folders for name in VGG19_FILES if (f / name).is_file()), None)


class PerceptualLoss(nn.Module):
    """Weighted L1 distance of VGG19 feature maps of [0, 1] RGB images (frozen network)."""

    def __init__(self, weights_file: Path):
        super().__init__()
        self.features = vgg19_features(max(LAYER_WEIGHTS))
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        own = self.features.state_dict()
        missing = [k for k in own if k not in features]
        if missing:
            raise ValueError(f"{weights_file.name} is not a torchvision VGG19 state dict (no features.{missing[0]})")
        self.features.load_state_dict({k: features[k] for k in own})
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x, maps = (x - self.mean) / self.std, {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in LAYER_WEIGHTS:
                maps[i] = x
        return maps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        sr_maps, hr_maps = self._maps(sr), self._maps(hr.detach())
        return sum(w * F.l1_loss(sr_maps[i], hr_maps[i]) for i, w in LAYER_WEIGHTS.items())
