"""Super-resolution networks with the parameter names and shapes of the official Real-ESRGAN checkpoints.

SRVGGNetCompact (`realesr-general-x4v3`, `realesr-animevideov3`) and RRDBNet (`RealESRGAN_x4plus`,
`RealESRGAN_x2plus`) are written out here because basicsr/realesrgan need torchvision; their state dicts are
key-for-key those of the upstream classes, so official `.pth` files load. SwinIR is in swinir.py.
Models see RGB in [0, 1].
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .swinir import DERIVED, SwinIR, check_swinir, infer_swinir, is_swinir

SIZES = {  # the model sizes a config names, and the upstream layouts they follow
    "ultra_lite": {"arch": "srvgg", "num_feat": 32, "num_conv": 16},
    "lite": {"arch": "srvgg", "num_feat": 64, "num_conv": 32},  # realesr-general-x4v3
    "standard": {"arch": "rrdb", "num_feat": 64, "num_block": 23, "num_grow_ch": 32},  # RealESRGAN_x4plus
    # SwinIR's official layouts (window 8, MLP ratio 2): 002_lightweightSR (SwinIR-S), 001_classicalSR (SwinIR-M),
    # 003_realSR (SwinIR-M, x4); the image size of their attention masks is the LR training patch's
    "swinir_lite": {"arch": "swinir", "embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4, "upsampler": "pixelshuffledirect"},
    "swinir_classical": {"arch": "swinir", "embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "upsampler": "pixelshuffle"},
    "swinir_real": {"arch": "swinir", "embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "upsampler": "nearest+conv"},
}
# RRDBNet upsamples x4 in two x2 steps only; SwinIR's classical upsampler in x2 steps or one x3
ARCH_SCALES = {"srvgg": (1, 2, 3, 4), "rrdb": (1, 2, 4), "swinir": (2, 3, 4, 8)}
# Far above any published layout (official: 64 features, 32 convolutions or 23 blocks): a file that asks for more
# would only make the studio build millions of layers before failing.
ARCH_LIMITS = {"num_in_ch": (1, 16), "num_out_ch": (1, 16), "num_feat": (1, 1024), "num_conv": (0, 1000),
               "num_block": (0, 200), "num_grow_ch": (1, 1024), "embed_dim": (1, 1024), "window_size": (1, 64),
               "img_size": (1, 4096)}


@dataclass
class SRArch:
    """Everything needed to rebuild a network (saved next to the weights as sr_config.json)."""
    arch: str = "srvgg"
    scale: int = 4
    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_conv: int = 32  # srvgg
    act_type: str = "prelu"  # srvgg
    num_block: int = 23  # rrdb
    num_grow_ch: int = 32  # rrdb
    embed_dim: int = 60  # swinir (num_feat: the upsampler's width)
    depths: list[int] = field(default_factory=lambda: [6, 6, 6, 6])  # swinir: blocks in each residual group
    num_heads: list[int] = field(default_factory=lambda: [6, 6, 6, 6])  # swinir
    window_size: int = 8  # swinir
    mlp_ratio: float = 2.0  # swinir
    img_size: int = 64  # swinir: the training patch (LR pixels) its stored attention masks are for
    upsampler: str = "pixelshuffledirect"  # swinir: pixelshuffle, pixelshuffledirect or nearest+conv
    resi_connection: str = "1conv"  # swinir: 1conv or 3conv
    drop_path_rate: float = 0.1  # swinir: stochastic depth while training (upstream's default)

    @classmethod
    def from_size(cls, size: str, scale: int, patch_size: int | None = None, embed_dim: int | None = None,
                  depths: list[int] | None = None) -> SRArch:
        """The layout a config's model.size names; SwinIR's attention masks are made for the LR patch, and its
        width and depth may be changed (the heads stay the layout's, one number for every group)."""
        fields = copy.deepcopy(SIZES[size])
        if fields["arch"] == "swinir":
            fields["img_size"] = patch_size // scale if patch_size else 64
            fields["embed_dim"] = embed_dim or fields["embed_dim"]
            if depths:
                fields["depths"], fields["num_heads"] = list(depths), fields["num_heads"][:1] * len(depths)
        arch = cls(scale=scale, **fields)
        arch.check()
        return arch

    def check(self) -> None:
        if self.arch not in ARCH_SCALES:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(ARCH_SCALES)}")
        if self.scale not in ARCH_SCALES[self.arch]:
            allowed = ", ".join(str(s) for s in ARCH_SCALES[self.arch] if s > 1)
            raise ValueError(f"{self.arch} models upscale x{allowed}, not x{self.scale}")
        for name, (low, high) in ARCH_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}: must be a whole number from {low} to {high}, got {value!r}")
        if self.arch == "swinir":
            check_swinir(self)

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self) -> nn.Module:
        self.check()
        if self.arch == "srvgg":
            return SRVGGNetCompact(self.num_in_ch, self.num_out_ch, self.num_feat, self.num_conv, self.scale, self.act_type)
        if self.arch == "swinir":
            return SwinIR(self.num_in_ch, self.num_out_ch, self.scale, self.img_size, self.window_size, self.embed_dim,
                          self.depths, self.num_heads, self.mlp_ratio, self.upsampler, self.resi_connection,
                          self.num_feat, self.drop_path_rate)
        return RRDBNet(self.num_in_ch, self.num_out_ch, self.scale, self.num_feat, self.num_block, self.num_grow_ch)


class SRVGGNetCompact(nn.Module):
    """A plain stack of 3x3 convolutions at the low resolution, a pixel shuffle, and a nearest-neighbour skip."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"):
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def _activation(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"unknown activation {kind!r}")


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat=64, num_grow_ch=32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat, num_grow_ch=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator. x2 and x1 fold the input into channels first (pixel unshuffle), as upstream."""

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        in_ch = num_in_ch * {1: 16, 2: 4}.get(scale, 1)
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, {1: 4, 2: 2}[self.scale]) if self.scale in (1, 2) else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


@torch.no_grad()
def initialise(model: nn.Module) -> nn.Module:
    """Initial weights for training from scratch. SRVGGNetCompact gets He initialisation (PyTorch's default
    shrinks the signal through 18 plain layers: on a CPU budget it then barely leaves nearest-neighbour output)
    and a zero last layer, so it starts as exactly its nearest-neighbour skip; RRDBNet's dense blocks get He
    initialisation scaled by 0.1, as upstream."""
    if isinstance(model, SRVGGNetCompact):
        convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
        for conv in convs[:-1]:
            nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")  # PReLU starts at slope 0.25
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(convs[-1].weight)
        nn.init.zeros_(convs[-1].bias)
    elif isinstance(model, RRDBNet):
        for block in model.body.modules():
            if isinstance(block, nn.Conv2d):
                nn.init.kaiming_normal_(block.weight)
                block.weight.mul_(0.1)
                nn.init.zeros_(block.bias)
    return model


def infer_arch(state: dict[str, torch.Tensor]) -> SRArch:
    """The layout an official or exported state dict was written for, from its keys and shapes."""
    if is_swinir(state):  # before RRDBNet: SwinIR has a conv_first too
        return SRArch("swinir", **infer_swinir(state))
    if "conv_first.weight" in state:
        num_feat, in_ch = state["conv_first.weight"].shape[:2]
        num_block = len({k.split(".")[1] for k in state if k.startswith("body.") and ".rdb1." in k})
        num_out = state["conv_last.weight"].shape[0] if "conv_last.weight" in state else 3
        scale = {num_out * 16: 1, num_out * 4: 2}.get(in_ch, 4)  # in_ch = 3 * unshuffle factor squared
        grow = state["body.0.rdb1.conv1.weight"].shape[0] if num_block else 32
        return SRArch("rrdb", scale, in_ch // {1: 16, 2: 4}.get(scale, 1), num_out, num_feat, num_block=num_block, num_grow_ch=grow)
    if "body.0.weight" in state:
        convs = sorted(int(k.split(".")[1]) for k in state if k.startswith("body.") and k.endswith(".weight")
                       and state[k].ndim == 4)
        last = state[f"body.{convs[-1]}.weight"]
        num_feat, in_ch = state["body.0.weight"].shape[:2]
        has_prelu = "body.1.weight" in state and state["body.1.weight"].ndim == 1
        scale = round((last.shape[0] / in_ch) ** 0.5)  # the last convolution makes in_ch x scale^2 channels
        return SRArch("srvgg", scale, in_ch, in_ch, num_feat, num_conv=len(convs) - 2,
                      act_type="prelu" if has_prelu else "leakyrelu")
    raise ValueError("not a Real-ESRGAN-family or SwinIR state dict: it has neither conv_first.weight (RRDBNet, "
                     "SwinIR) nor body.0.weight (SRVGGNetCompact)")


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """load_state_dict that names the first key or shape that does not fit."""
    own = model.state_dict()
    # SwinIR's position indices and masks follow from the shapes: a file may lack them, or hold another patch size's
    state = {k: v for k, v in state.items() if not k.endswith(DERIVED)} | {k: v for k, v in own.items() if k.endswith(DERIVED)}
    for key, value in own.items():
        if key not in state:
            raise ValueError(f"the file lacks parameter {key} (shape {tuple(value.shape)})")
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"parameter {key} has shape {tuple(state[key].shape)} in the file, "
                             f"the model expects {tuple(value.shape)}")
    extra = [k for k in state if k not in own]
    if extra:
        raise ValueError(f"the file has parameter {extra[0]} (shape {tuple(state[extra[0]].shape)}) that this model does not")
    model.load_state_dict(state)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's discriminator: a U-Net with spectral norm that judges every pixel (input size a multiple of 8)."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        return self.conv9(act(self.conv8(act(self.conv7(x6)))))
