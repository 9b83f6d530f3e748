"""SwinIR (Liang et al. 2021) with the parameter names and buffers of the official checkpoints.

Written out here because the packages that provide it (timm, basicsr, spandrel) need torchvision. The module
tree is upstream's `models/network_swinir.py` key for key (`layers.<i>.residual_group.blocks.<j>.attn.qkv`,
`conv_after_body`, `upsample.0`...), its persistent buffers (`relative_position_index`, the shifted blocks'
`attn_mask`) included, so the released `.pth` files load strictly and our exports load in upstream's code.
Upsamplers: 'pixelshuffle' (classical SR), 'pixelshuffledirect' (lightweight), 'nearest+conv' (real-world, x4).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's mean, subtracted before the network as upstream does
DERIVED = ("relative_position_index", "attn_mask")  # buffers computed from the shapes, not learned
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv")


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training (timm's DropPath)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """B x H x W x C -> (B * windows) x window^2 x C, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """windows x window^2 x window^2: -100 between pixels that a cyclic shift brought from different regions."""
    regions = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        regions[:, rows, cols, :] = i
    labels = window_partition(regions, window).squeeze(-1)
    differ = labels.unsqueeze(1) - labels.unsqueeze(2)
    return differ.masked_fill(differ != 0, -100.0).masked_fill(differ == 0, 0.0)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned bias per relative position and head."""

    def __init__(self, dim: int, window: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", relative[..., 0] * (2 * window - 1) + relative[..., 1])
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B * windows) x N x C; mask: windows x N x N (or None)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        if mask is not None:  # windows x heads x N x N: each window of every image has its own mask
            windows = mask.shape[0]
            bias = bias[None] + mask[:, None].to(bias.dtype)
            q, k, v = (t.view(b // windows, windows, self.num_heads, n, -1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.reshape(b, self.num_heads, n, -1).transpose(1, 2).reshape(b, n, c))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, shift: int, mlp_ratio: float,
                 drop_path: float):
        super().__init__()
        if resolution <= window:  # as upstream: a window covering the whole training patch is not shifted
            window, shift = resolution, 0
        self.window, self.shift, self.resolution = window, shift, resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", shift_mask(resolution, resolution, window, shift) if shift else None)

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """x: B x HW x C tokens; mask: the shifted windows' mask for this size (shared by all shifted blocks)."""
        (h, w), (b, _, c) = size, x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = window_reverse(self.attn(window_partition(y, self.window), mask if self.shift else None), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BlockGroup(nn.Module):
    """Upstream's BasicLayer: its blocks alternate plain and half-window-shifted windows."""

    def __init__(self, dim, resolution, depth, num_heads, window, mlp_ratio, drop_paths):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, resolution, num_heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio,
                                 drop_paths[i]) for i in range(depth))

    def forward(self, x, size, mask):
        for block in self.blocks:
            x = block(x, size, mask)
        return x


def residual_conv(dim: int, kind: str) -> nn.Module:
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    # '3conv' (the large real-world model): a bottleneck of dim / 4 channels, to save parameters
    return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(dim // 4, dim, 3, 1, 1))


def to_image(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *size)


class RSTB(nn.Module):
    """Residual Swin Transformer block: a group of blocks, a convolution, and a skip around both."""

    def __init__(self, dim, resolution, depth, num_heads, window, mlp_ratio, drop_paths, resi_connection):
        super().__init__()
        self.residual_group = BlockGroup(dim, resolution, depth, num_heads, window, mlp_ratio, drop_paths)
        self.conv = residual_conv(dim, resi_connection)

    def forward(self, x, size, mask):
        return self.conv(to_image(self.residual_group(x, size, mask), size)).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):  # with patch size 1 only its LayerNorm is left; kept for the key `patch_embed.norm`
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)


class SwinIR(nn.Module):
    """Inputs are RGB in [0, 1] whose sides are multiples of the window (see `forward_padded` for any size)."""

    def __init__(self, num_in_ch=3, num_out_ch=3, upscale=2, img_size=64, window_size=8, embed_dim=60,
                 depths=(6, 6, 6, 6), num_heads=(6, 6, 6, 6), mlp_ratio=2.0, upsampler="pixelshuffledirect",
                 resi_connection="1conv", num_feat=64, drop_path_rate=0.1):
        super().__init__()
        self.upscale, self.upsampler, self.window_size = upscale, upsampler, window_size
        mean = RGB_MEAN if num_in_ch == 3 else (0.0,) * num_in_ch
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        n = sum(depths)  # stochastic depth grows linearly with depth (plain floats: builds on the meta device too)
        rates = [drop_path_rate * i / max(n - 1, 1) for i in range(n)]
        self.layers = nn.ModuleList(
            RSTB(embed_dim, img_size, depth, heads, window_size, mlp_ratio,
                 rates[sum(depths[:i]):sum(depths[:i + 1])], resi_connection)
            for i, (depth, heads) in enumerate(zip(depths, num_heads)))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)
        if upsampler == "pixelshuffledirect":  # lightweight: one convolution straight to scale^2 x RGB
            self.upsample = nn.Sequential(nn.Conv2d(embed_dim, upscale ** 2 * num_out_ch, 3, 1, 1), nn.PixelShuffle(upscale))
        else:
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            if upsampler == "pixelshuffle":  # classical: x2 steps (or one x3), then a convolution
                steps = [(3, 9)] if upscale == 3 else [(2, 4)] * int(math.log2(upscale))
                self.upsample = nn.Sequential(*[m for s, k in steps for m in (nn.Conv2d(num_feat, k * num_feat, 3, 1, 1),
                                                                              nn.PixelShuffle(s))])
            else:  # 'nearest+conv', real-world x4: nearest-neighbour steps as RRDBNet (fewer checkerboard artefacts)
                self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.lrelu = nn.LeakyReLU(0.2, inplace=True)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self._init()

    def _init(self) -> None:
        for m in self.modules():  # upstream's _init_weights; convolutions keep PyTorch's default
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:])
        tokens = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        mask = self.shift_mask(size)
        for layer in self.layers:
            tokens = layer(tokens, size, mask)
        return to_image(self.norm(tokens), size)

    def shift_mask(self, size: tuple[int, int]) -> torch.Tensor | None:
        """The mask of the shifted windows: the stored one at the training size, else made for this size."""
        shifted = next((b for layer in self.layers for b in layer.residual_group.blocks if b.shift), None)
        if shifted is None:
            return None
        if size == (shifted.resolution, shifted.resolution):
            return shifted.attn_mask
        return shift_mask(*size, shifted.window, shifted.shift).to(self.conv_first.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        x = self.conv_first(x - mean)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffledirect":
            return self.upsample(x) + mean
        x = self.conv_before_upsample(x)
        if self.upsampler == "pixelshuffle":
            return self.conv_last(self.upsample(x)) + mean
        x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(x))) + mean

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Any size, as upstream's main_test_swinir.py: mirror the image (flipped copies) at the bottom and right
        to past the next multiple of the window (always at least one pixel), run, crop."""
        h, w = x.shape[2:]
        high, wide = (h // self.window_size + 1) * self.window_size, (w // self.window_size + 1) * self.window_size
        while x.shape[2] < high:  # one flipped copy suffices unless the image is smaller than the padding
            x = torch.cat([x, x.flip(2)], 2)
        while x.shape[3] < wide:
            x = torch.cat([x, x.flip(3)], 3)
        return self(x[:, :, :high, :wide])[:, :, :h * self.upscale, :w * self.upscale]


def is_swinir(state: dict) -> bool:
    return "conv_after_body.weight" in state or "conv_after_body.0.weight" in state


def infer_swinir(state: dict[str, torch.Tensor]) -> dict:
    """SRArch fields of a SwinIR state dict, from its keys and shapes: groups and blocks from `layers.<i>...blocks.<j>`,
    heads and window from the relative position tables, the training patch from the stored masks."""
    embed_dim, in_ch = state["conv_first.weight"].shape[:2]
    groups = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.")})
    prefix = "layers.{}.residual_group.blocks.{}."
    depths = [len({k.split(".")[4] for k in state if k.startswith(f"layers.{i}.residual_group.blocks.")}) for i in groups]
    if not groups or groups != list(range(len(groups))) or 0 in depths:
        raise ValueError("a SwinIR state dict without layers.0.residual_group.blocks.0 (or with gaps in its layers)")
    tables = [state[prefix.format(i, 0) + "attn.relative_position_bias_table"].shape for i in groups]
    side = math.isqrt(tables[0][0])
    if side * side != tables[0][0] or side % 2 == 0:
        raise ValueError(f"relative_position_bias_table has {tables[0][0]} rows, not (2 x window - 1)^2")
    window = (side + 1) // 2
    mask = state.get(prefix.format(0, 1) + "attn_mask")
    fields = {"num_in_ch": int(in_ch), "num_out_ch": int(in_ch), "embed_dim": int(embed_dim), "depths": depths,
              "num_heads": [int(t[1]) for t in tables], "window_size": window,
              "mlp_ratio": state[prefix.format(0, 0) + "mlp.fc1.weight"].shape[0] / embed_dim,
              "img_size": math.isqrt(mask.shape[0]) * window if mask is not None else 64,
              "resi_connection": "3conv" if "conv_after_body.0.weight" in state else "1conv"}
    if "conv_up1.weight" in state:
        out = state["conv_last.weight"].shape[0]
        return fields | {"upsampler": "nearest+conv", "scale": 4, "num_out_ch": int(out), "num_feat": int(state["conv_up1.weight"].shape[0])}
    if "conv_before_upsample.0.weight" in state:
        num_feat = state["conv_before_upsample.0.weight"].shape[0]
        steps = [k for k in state if k.startswith("upsample.") and k.endswith(".weight")]
        scale = 3 if steps and state["upsample.0.weight"].shape[0] == 9 * num_feat else 2 ** len(steps)
        return fields | {"upsampler": "pixelshuffle", "scale": scale, "num_feat": int(num_feat),
                         "num_out_ch": int(state["conv_last.weight"].shape[0])}
    if "upsample.0.weight" in state:
        scale = math.isqrt(state["upsample.0.weight"].shape[0] // in_ch)
        return fields | {"upsampler": "pixelshuffledirect", "scale": scale}
    raise ValueError("a SwinIR denoising or JPEG model (no upsampler): it does not upscale")


def check_swinir(arch) -> None:
    """Refuse (naming the field) a SwinIR layout that upstream's code could not build."""
    if arch.upsampler not in UPSAMPLERS:
        raise ValueError(f"upsampler: {arch.upsampler!r} is not one of {', '.join(UPSAMPLERS)}")
    if arch.upsampler == "nearest+conv" and arch.scale != 4:
        raise ValueError(f"SwinIR's nearest+conv upsampler (real-world SR) upscales x4 only, not x{arch.scale}")
    if arch.resi_connection not in ("1conv", "3conv"):
        raise ValueError(f"resi_connection: {arch.resi_connection!r} is not 1conv or 3conv")
    lists = (arch.depths, arch.num_heads)
    if not all(isinstance(v, list) and 1 <= len(v) <= 64 and all(type(n) is int and 1 <= n <= 64 for n in v) for v in lists):
        raise ValueError(f"depths and num_heads: lists of 1 to 64 whole numbers from 1 to 64, got {arch.depths!r} "
                         f"and {arch.num_heads!r}")
    if len(arch.depths) != len(arch.num_heads):
        raise ValueError(f"depths and num_heads differ in length ({len(arch.depths)}, {len(arch.num_heads)})")
    if any(arch.embed_dim % h for h in arch.num_heads):
        raise ValueError(f"embed_dim {arch.embed_dim} is not a multiple of every num_heads {arch.num_heads}")
    if arch.resi_connection == "3conv" and arch.embed_dim % 4:
        raise ValueError(f"embed_dim {arch.embed_dim}: a 3conv residual connection needs a multiple of 4")
    if not (isinstance(arch.mlp_ratio, (int, float)) and 0 < arch.mlp_ratio <= 16):
        raise ValueError(f"mlp_ratio: must be above 0 and at most 16, got {arch.mlp_ratio!r}")
    if not (isinstance(arch.drop_path_rate, (int, float)) and 0 <= arch.drop_path_rate < 1):
        raise ValueError(f"drop_path_rate: must be from 0 to below 1, got {arch.drop_path_rate!r}")
