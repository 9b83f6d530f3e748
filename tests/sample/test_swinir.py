"""SwinIR: the official checkpoints' keys and shapes, loading their .pth files, and upscaling as upstream's test script."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.cli import main as cli
from pipelines.families.sr.model import load_upscaler
from pipelines.families.sr.networks import SRArch, infer_arch
from pipelines.sample.upscale_images import upscale_image


def official_swinir(embed_dim, depths, heads, upsampler, scale, resi="1conv", img_size=64, window=8):
    """The keys and shapes of upstream's models/network_swinir.py SwinIR (mlp_ratio 2, patch_norm, no ape), written
    out from its source in its module order: persistent buffers included, as its strict load_state_dict needs."""
    shapes = {"conv_first.weight": (embed_dim, 3, 3, 3), "conv_first.bias": (embed_dim,),
              "patch_embed.norm.weight": (embed_dim,), "patch_embed.norm.bias": (embed_dim,)}

    def resi_conv(prefix):
        if resi == "1conv":
            return {f"{prefix}.weight": (embed_dim, embed_dim, 3, 3), f"{prefix}.bias": (embed_dim,)}
        q = embed_dim // 4
        return {f"{prefix}.0.weight": (q, embed_dim, 3, 3), f"{prefix}.0.bias": (q,), f"{prefix}.2.weight": (q, q, 1, 1),
                f"{prefix}.2.bias": (q,), f"{prefix}.4.weight": (embed_dim, q, 3, 3), f"{prefix}.4.bias": (embed_dim,)}

    windows = (img_size // window) ** 2
    for i, (depth, h) in enumerate(zip(depths, heads)):
        for j in range(depth):
            b = f"layers.{i}.residual_group.blocks.{j}."
            if j % 2:  # shifted windows keep their mask as a buffer (a module's own buffers come before its children)
                shapes[b + "attn_mask"] = (windows, window ** 2, window ** 2)
            shapes |= {b + "norm1.weight": (embed_dim,), b + "norm1.bias": (embed_dim,),
                       b + "attn.relative_position_bias_table": ((2 * window - 1) ** 2, h),
                       b + "attn.relative_position_index": (window ** 2, window ** 2),
                       b + "attn.qkv.weight": (3 * embed_dim, embed_dim), b + "attn.qkv.bias": (3 * embed_dim,),
                       b + "attn.proj.weight": (embed_dim, embed_dim), b + "attn.proj.bias": (embed_dim,),
                       b + "norm2.weight": (embed_dim,), b + "norm2.bias": (embed_dim,),
                       b + "mlp.fc1.weight": (2 * embed_dim, embed_dim), b + "mlp.fc1.bias": (2 * embed_dim,),
                       b + "mlp.fc2.weight": (embed_dim, 2 * embed_dim), b + "mlp.fc2.bias": (embed_dim,)}
        shapes |= resi_conv(f"layers.{i}.conv")
    shapes |= {"norm.weight": (embed_dim,), "norm.bias": (embed_dim,)} | resi_conv("conv_after_body")
    if upsampler == "pixelshuffledirect":
        return shapes | {"upsample.0.weight": (3 * scale * scale, embed_dim, 3, 3), "upsample.0.bias": (3 * scale * scale,)}
    shapes |= {"conv_before_upsample.0.weight": (64, embed_dim, 3, 3), "conv_before_upsample.0.bias": (64,)}
    if upsampler == "pixelshuffle":
        steps = [9] if scale == 3 else [4] * {2: 1, 4: 2, 8: 3}[scale]
        for n, k in enumerate(steps):
            shapes |= {f"upsample.{2 * n}.weight": (k * 64, 64, 3, 3), f"upsample.{2 * n}.bias": (k * 64,)}
    else:
        for name in ("conv_up1", "conv_up2", "conv_hr"):
            shapes |= {f"{name}.weight": (64, 64, 3, 3), f"{name}.bias": (64,)}
    return shapes | {"conv_last.weight": (3, 64, 3, 3), "conv_last.bias": (3,)}


def counted(shapes) -> int:
    """Parameters as the paper counts them: learned weights without the relative position bias tables."""
    skip = ("relative_position_index", "attn_mask", "relative_position_bias_table")
    return sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith(skip))


def random_weights(arch: SRArch, seed: int = 0) -> dict[str, torch.Tensor]:
    """A model's state dict with its learned weights nudged at random, so that no two seeds agree."""
    torch.manual_seed(seed)
    state = arch.build().state_dict()
    for key, value in state.items():
        if value.is_floating_point() and not key.endswith("attn_mask"):
            value.add_(torch.randn_like(value) * 0.01)
    return state


RELEASES = [  # (release file, its layout, its parameters as the paper counts them)
    ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2", (60, [6] * 4, [6] * 4, "pixelshuffledirect", 2), 877_752),  # 878K
    ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x3", (60, [6] * 4, [6] * 4, "pixelshuffledirect", 3), 885_867),  # 886K
    ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4", (60, [6] * 4, [6] * 4, "pixelshuffledirect", 4), 897_228),  # 897K
    ("001_classicalSR_DIV2K_s48w8_SwinIR-M_x2", (180, [6] * 6, [6] * 6, "pixelshuffle", 2), None),
    ("001_classicalSR_DIV2K_s48w8_SwinIR-M_x3", (180, [6] * 6, [6] * 6, "pixelshuffle", 3), None),
    ("001_classicalSR_DF2K_s64w8_SwinIR-M_x8", (180, [6] * 6, [6] * 6, "pixelshuffle", 8), None),
    ("003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN", (180, [6] * 6, [6] * 6, "nearest+conv", 4), None),
    ("003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN", (240, [6] * 9, [8] * 9, "nearest+conv", 4, "3conv"), None),
]


@pytest.mark.parametrize("name,layout,params", RELEASES, ids=[r[0] for r in RELEASES])
def test_swinir_keys_match_the_official_layout(name, layout, params):
    img_size = 48 if "_s48" in name else 64
    official = official_swinir(*layout, img_size=img_size)
    with torch.device("meta"):  # shapes only: the large models allocate nothing
        arch = SRArch("swinir", layout[4], embed_dim=layout[0], depths=layout[1], num_heads=layout[2],
                      upsampler=layout[3], resi_connection=layout[5] if len(layout) > 5 else "1conv", img_size=img_size)
        ours = arch.build().state_dict()
    assert list(ours) == list(official)  # the same keys in the same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == official
    if params:
        assert counted(official) == params
    assert infer_arch({k: torch.empty(s, device="meta") for k, s in official.items()}) == arch  # read back from the keys


def small(scale=2, upsampler="pixelshuffledirect", patch=64) -> SRArch:
    """A small SwinIR in an official layout's shape (window 8, MLP ratio 2; two groups of two blocks)."""
    return SRArch("swinir", scale, embed_dim=24, depths=[2, 2], num_heads=[6, 6], upsampler=upsampler, img_size=patch)


def test_official_files_load_with_upstreams_choice_of_weights(tmp_path):
    """Upstream's test script reads params for classical and lightweight models, params_ema for real-world ones."""
    lite, real = small(), small(4, "nearest+conv")
    for arch, chosen in ((lite, "params"), (real, "params_ema")):
        weights = {"params": random_weights(arch, 1), "params_ema": random_weights(arch, 2)}
        torch.save(weights, tmp_path / "both.pth")
        up = load_upscaler(tmp_path / "both.pth")
        assert up.arch == arch and up.label == f"both.pth (swinir x{arch.scale})"
        loaded = up.model.state_dict()
        assert all(torch.equal(loaded[k], weights[chosen][k]) for k in loaded)
        torch.save({"params_ema": weights["params_ema"]}, tmp_path / "ema.pth")  # the one there is
        assert torch.equal(load_upscaler(tmp_path / "ema.pth").model.state_dict()["conv_first.weight"],
                           weights["params_ema"]["conv_first.weight"])
    # The masks and position indices are not learned: a file without them, or made for another patch size, loads.
    state = {k: v for k, v in random_weights(lite).items() if not k.endswith(("attn_mask", "relative_position_index"))}
    torch.save({"params": state}, tmp_path / "bare.pth")
    assert load_upscaler(tmp_path / "bare.pth").arch.img_size == 64  # upstream's default
    state = random_weights(small(patch=32))  # masks for 32 px
    torch.save(state, tmp_path / "plain.pth")  # a bare state dict, as upstream's fallback reads
    assert load_upscaler(tmp_path / "plain.pth").arch.img_size == 32
    del state["layers.1.residual_group.blocks.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"lacks parameter layers\.1\.residual_group\.blocks\.1\.mlp\.fc2\.bias"):
        load_upscaler(tmp_path / "broken.pth")
    denoise = {k: v for k, v in random_weights(lite).items() if not k.startswith("upsample.")}
    torch.save({"params": denoise}, tmp_path / "denoise.pth")
    with pytest.raises(ValueError, match="denoising or JPEG model"):
        load_upscaler(tmp_path / "denoise.pth")


def upstream_test(model, img: torch.Tensor, window: int, scale: int) -> torch.Tensor:
    """main_test_swinir.py's whole-image test, restated: flip-mirror to past the next window multiple, run, crop."""
    _, _, h_old, w_old = img.size()
    h_pad = (h_old // window + 1) * window - h_old
    w_pad = (w_old // window + 1) * window - w_old
    img = torch.cat([img, torch.flip(img, [2])], 2)[:, :, :h_old + h_pad, :]
    img = torch.cat([img, torch.flip(img, [3])], 3)[:, :, :, :w_old + w_pad]
    return model(img)[..., :h_old * scale, :w_old * scale]


def test_upscaling_follows_upstreams_padding_and_crop(tmp_path):
    import skimage.data

    torch.save({"params": random_weights(small(), 3)}, tmp_path / "SwinIR-S_x2.pth")
    photo = Image.fromarray(skimage.data.astronaut()).crop((100, 50, 161, 103))  # 61 x 53: no multiple of 8
    photo.save(tmp_path / "photo.png")
    up = load_upscaler(tmp_path / "SwinIR-S_x2.pth")
    x = torch.from_numpy(np.asarray(photo, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = upstream_test(up.model, x, 8, 2)
    expected = (expected[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(int)
    assert cli(["upscale", "--model", str(tmp_path / "SwinIR-S_x2.pth"), "--input", str(tmp_path / "photo.png"),
                "--output", str(tmp_path / "big.png"), "--quiet"]) == 0
    ours = np.asarray(Image.open(tmp_path / "big.png")).astype(int)
    assert ours.shape == (106, 122, 3) and ours.std() > 20  # an image, not a blank
    assert np.abs(ours - expected).max() <= 1  # within one grey level of upstream's procedure
    # The padding matters: torch's reflect padding (no repeated edge) to the next multiple gives another result.
    with torch.no_grad():
        other = up.model(F.pad(x, (0, 3, 0, 3), mode="reflect"))[..., :106, :122]
    other = (other[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(int)
    assert np.abs(other - expected).max() > 1
    tiled = np.asarray(upscale_image(up, photo, tile=32, tile_pad=16)).astype(int)  # tiles: each padded the same way
    assert tiled.shape == ours.shape and np.abs(tiled - ours).mean() < 1
