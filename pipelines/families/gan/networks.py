"""SAGAN-style generator and discriminator: residual blocks, spectral normalisation, self-attention.

Class-conditional when `num_classes` > 0: conditional batch norm in the generator, a projection head in the
discriminator (Miyato & Koyama 2018). Channels follow the resolution: a feature map of r pixels in a model
of resolution R has base * min(8, R / r) channels in G (widest at 4x4) and mirrored in D.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class GANArch:
    """Everything needed to rebuild the networks (saved as JSON beside the weights)."""
    resolution: int = 16
    channels: int = 1
    z_dim: int = 128
    g_channels: int = 64
    d_channels: int = 64
    attention_resolutions: list[int] = field(default_factory=lambda: [16])
    num_classes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def widths(self, base: int) -> dict[int, int]:
        """Channels at each feature-map size, 4 .. resolution."""
        sizes = [4 * 2 ** i for i in range(int(math.log2(self.resolution // 4)) + 1)]
        return {r: base * min(8, self.resolution // r) for r in sizes}


def sn_conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


class SelfAttention(nn.Module):
    """SAGAN attention; gamma starts at 0 so a new block begins as the identity."""

    def __init__(self, ch: int):
        super().__init__()
        self.theta, self.phi = sn_conv(ch, ch // 8, 1), sn_conv(ch, ch // 8, 1)
        self.g, self.out = sn_conv(ch, ch // 2, 1), sn_conv(ch // 2, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # n, c/8, hw
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # n, c/8, hw/4
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # n, c/2, hw/4
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # n, hw, hw/4
        o = (g @ attn.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.out(o)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias come from the class (plain affine BatchNorm without classes)."""

    def __init__(self, ch: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, affine=num_classes == 0)
        if num_classes:
            self.gain, self.bias = nn.Embedding(num_classes, ch), nn.Embedding(num_classes, ch)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if not self.num_classes:
            return out
        return out * (1 + self.gain(y)[:, :, None, None]) + self.bias(y)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(cin, num_classes), ConditionalBatchNorm(cout, num_classes)
        self.conv1, self.conv2, self.skip = sn_conv(cin, cout), sn_conv(cout, cout), sn_conv(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, arch: GANArch):
        super().__init__()
        self.arch = arch
        widths = arch.widths(arch.g_channels)
        sizes = sorted(widths)
        self.fc = spectral_norm(nn.Linear(arch.z_dim, 4 * 4 * widths[4]))
        self.blocks = nn.ModuleList(GBlock(widths[r], widths[r * 2], arch.num_classes) for r in sizes[:-1])
        self.attention = nn.ModuleDict({str(r * 2): SelfAttention(widths[r * 2]) for r in sizes[:-1]
                                        if r * 2 in arch.attention_resolutions})
        self.bn = nn.BatchNorm2d(widths[arch.resolution])
        self.to_image = sn_conv(widths[arch.resolution], arch.channels)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            h = block(h, y)
            if str(h.shape[-1]) in self.attention:
                h = self.attention[str(h.shape[-1])](h)
        return torch.tanh(self.to_image(F.relu(self.bn(h))))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.first = first  # the first block sees images: no ReLU before its first conv
        self.conv1, self.conv2, self.skip = sn_conv(cin, cout), sn_conv(cout, cout), sn_conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return F.avg_pool2d(h, 2) + skip


class Discriminator(nn.Module):
    def __init__(self, arch: GANArch):
        super().__init__()
        widths = arch.widths(arch.d_channels)
        sizes = sorted(widths, reverse=True)  # resolution .. 4
        cin = arch.channels
        blocks, attention = [], {}
        for i, r in enumerate(sizes[:-1]):
            cout = widths[r // 2]
            blocks.append(DBlock(cin, cout, first=i == 0))
            if r // 2 in arch.attention_resolutions:
                attention[str(r // 2)] = SelfAttention(cout)
            cin = cout
        self.blocks, self.attention = nn.ModuleList(blocks), nn.ModuleDict(attention)
        self.linear = spectral_norm(nn.Linear(cin, 1))
        self.embed = spectral_norm(nn.Embedding(arch.num_classes, cin)) if arch.num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
            if str(h.shape[-1]) in self.attention:
                h = self.attention[str(h.shape[-1])](h)
        h = F.relu(h).sum(dim=(2, 3))
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)  # projection: how well the features match the class
        return out
