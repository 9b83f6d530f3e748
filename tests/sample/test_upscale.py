"""Super-resolution models: official checkpoint layouts load key for key, tiling is exact, every kind of input."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.families.sr.model import load_upscaler, save_upscaler_files
from pipelines.families.sr.networks import SRArch, load_matching
from pipelines.sample.upscale_images import (
    UpscaleError,
    open_checked,
    upscale_image,
    upscale_path,
)


def official_srvgg(num_feat: int, num_conv: int, scale: int) -> dict[str, torch.Tensor]:
    """The keys and shapes of Real-ESRGAN's srvgg_arch.SRVGGNetCompact (PReLU), written out from its source."""
    shapes = {"body.0.weight": (num_feat, 3, 3, 3), "body.0.bias": (num_feat,), "body.1.weight": (num_feat,)}
    for k in range(1, num_conv + 1):
        shapes |= {f"body.{2 * k}.weight": (num_feat, num_feat, 3, 3), f"body.{2 * k}.bias": (num_feat,),
                   f"body.{2 * k + 1}.weight": (num_feat,)}
    last = 2 * (num_conv + 1)
    shapes |= {f"body.{last}.weight": (3 * scale * scale, num_feat, 3, 3), f"body.{last}.bias": (3 * scale * scale,)}
    return {k: torch.randn(s) * 0.01 for k, s in shapes.items()}


def official_rrdb(num_block: int, scale: int, num_feat: int = 64, grow: int = 32) -> dict[str, torch.Tensor]:
    """The keys and shapes of basicsr's rrdbnet_arch.RRDBNet (x2 folds 2x2 pixels into 12 input channels)."""
    in_ch = {2: 12, 4: 3}[scale]
    shapes = {"conv_first.weight": (num_feat, in_ch, 3, 3), "conv_first.bias": (num_feat,)}
    for b in range(num_block):
        for r in (1, 2, 3):
            for c in range(1, 6):
                out = num_feat if c == 5 else grow
                shapes[f"body.{b}.rdb{r}.conv{c}.weight"] = (out, num_feat + (c - 1) * grow, 3, 3)
                shapes[f"body.{b}.rdb{r}.conv{c}.bias"] = (out,)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        shapes |= {f"{name}.weight": (num_feat, num_feat, 3, 3), f"{name}.bias": (num_feat,)}
    shapes |= {"conv_last.weight": (3, num_feat, 3, 3), "conv_last.bias": (3,)}
    return {k: torch.randn(s) * 0.01 for k, s in shapes.items()}


@pytest.mark.parametrize("name,state,arch,scale,params", [
    ("realesr-general-x4v3", lambda: official_srvgg(64, 32, 4), "srvgg", 4, 1_213_296),
    ("realesr-animevideov3", lambda: official_srvgg(64, 16, 4), "srvgg", 4, None),
    ("srvgg x2", lambda: official_srvgg(32, 16, 2), "srvgg", 2, None),
    ("srvgg x3", lambda: official_srvgg(32, 16, 3), "srvgg", 3, None),
    ("RealESRGAN_x4plus", lambda: official_rrdb(23, 4), "rrdb", 4, 16_697_987),
    ("RealESRGAN_x2plus", lambda: official_rrdb(23, 2), "rrdb", 2, 16_703_171),
])
def test_official_layouts_load_key_for_key(tmp_path, name, state, arch, scale, params):
    weights = state()
    ema = {k: v + 1.0 for k, v in weights.items()}
    path = tmp_path / f"{name}.pth"
    torch.save({"params": weights, "params_ema": ema}, path)
    up = load_upscaler(path)
    assert (up.arch.arch, up.scale) == (arch, scale)
    loaded = up.model.state_dict()
    assert set(loaded) == set(weights)
    assert all(torch.equal(loaded[k], ema[k]) for k in weights)  # params_ema is preferred
    if params:
        assert sum(v.numel() for v in weights.values()) == params  # the published model sizes
    torch.save({"params": weights}, path)
    assert torch.equal(load_upscaler(path).model.state_dict()["conv_last.weight" if arch == "rrdb" else "body.0.weight"],
                       weights["conv_last.weight" if arch == "rrdb" else "body.0.weight"])
    out = up.run(torch.rand(1, 3, 8, 8), tile=0)
    assert out.shape == (1, 3, 8 * scale, 8 * scale)


def test_a_file_that_does_not_fit_names_the_key_and_shape():
    lite = SRArch.from_size("lite", 4).build()
    with pytest.raises(ValueError, match=r"body\.0\.weight has shape \(32, 3, 3, 3\) in the file, the model expects \(64, 3, 3, 3\)"):
        load_matching(lite, SRArch.from_size("ultra_lite", 4).build().state_dict())
    state = official_rrdb(1, 4)
    del state["conv_hr.bias"]
    with pytest.raises(ValueError, match=r"lacks parameter conv_hr\.bias \(shape \(64,\)\)"):
        load_matching(SRArch("rrdb", 4, num_block=1).build(), state)
    with pytest.raises(ValueError, match="x2, 4, not x3"):
        SRArch.from_size("standard", 3)


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_untrusted_files_never_run_code(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"params_ema": Boom()}))
    with pytest.raises(ValueError, match="cannot be read as plain weights"):
        load_upscaler(evil)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read"):
        load_upscaler(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_upscaler(tmp_path / "missing.pth")


def small_model(tmp_path, arch: SRArch, nearest: bool = False):
    """Random weights larger than the default init, so every pixel of context matters; or, for SRVGG, zero
    weights: the network then adds nothing to its nearest-neighbour skip (a known, sharp output)."""
    torch.manual_seed(0)
    model = arch.build()
    for p in model.parameters():
        p.data.zero_() if nearest else p.data.normal_(0, 0.2)
    folder = tmp_path / f"{arch.arch}{arch.scale}"
    folder.mkdir()
    save_upscaler_files(model, arch, folder)
    return load_upscaler(folder)


@pytest.mark.parametrize("arch,pad", [(SRArch("srvgg", 4, num_feat=8, num_conv=6), 8),
                                      (SRArch("rrdb", 2, num_feat=8, num_block=1, num_grow_ch=4), 40)])
def test_tiled_equals_untiled(tmp_path, arch, pad):
    up = small_model(tmp_path, arch)
    image = torch.rand(1, 3, 53, 38)
    whole = up.run(image, tile=0)
    seen = []
    tiled = up.run(image, tile=16, tile_pad=pad, progress=lambda done, total: seen.append((done, total)))
    assert tiled.shape == whole.shape == (1, 3, 53 * arch.scale, 38 * arch.scale)
    assert (tiled - whole).abs().max() < 1e-4
    assert seen[-1] == (12, 12)  # 4 x 3 tiles, one at a time
    assert (up.run(image, tile=16, tile_pad=0) - whole).abs().max() > 1e-3  # no context: seams
    padded = up.run(image, tile=16, tile_pad=pad, pre_pad=20)  # reflected context at the edges, cut off again
    assert padded.shape == whole.shape
    as_bytes = up.run(image, tile=16, tile_pad=pad, dtype=torch.uint8)  # quantised tile by tile
    assert as_bytes.dtype == torch.uint8 and (as_bytes.float() - (whole * 255).round()).abs().max() <= 1


def test_file_kinds_keep_their_kind(tmp_path):
    up = small_model(tmp_path, SRArch("srvgg", 2, num_feat=8, num_conv=2), nearest=True)
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 255, (20, 24, 3))
    rgba[:, 12:, 3] = 255
    out = upscale_image(up, Image.fromarray(rgba, "RGBA"))
    assert out.mode == "RGBA" and out.size == (48, 40)
    alpha = np.asarray(out)[..., 3]
    assert alpha[:, :24].max() == 0 and alpha[:, 24:].min() == 255  # transparency survives, upscaled on its own
    assert np.array_equal(np.asarray(out)[::2, ::2, :3], rgba[..., :3])
    gray = upscale_image(up, Image.fromarray(np.full((10, 10), 200, np.uint8), "L"), outscale=3)
    assert gray.mode == "L" and gray.size == (30, 30) and abs(int(np.asarray(gray).mean()) - 200) <= 1
    deep = upscale_image(up, Image.fromarray(np.full((10, 12), 40000, np.uint16)))
    assert deep.mode.startswith("I;16") and deep.size == (24, 20) and np.asarray(deep).max() > 255
    deep3 = upscale_image(up, Image.fromarray(np.full((10, 12), 40000, np.uint16)), outscale=3)
    assert deep3.mode == "I;16" and deep3.size == (36, 30) and abs(int(np.asarray(deep3).mean()) - 40000) < 100
    pal = Image.fromarray(rgba[..., :3]).convert("P")
    assert upscale_image(up, pal, outscale=1.5).size == (36, 30)


def test_bad_inputs_are_refused_clearly_and_the_rest_still_upscale(tmp_path):
    up = small_model(tmp_path, SRArch("srvgg", 2, num_feat=8, num_conv=2))
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(src / "a.png")
    Image.fromarray(np.full((8, 8), 30, np.uint8)).save(src / "sub" / "b.jpg")
    (src / "notes.txt").write_text("hello")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, "PNG")
    (src / "truncated.png").write_bytes(buf.getvalue()[:60])
    report = upscale_path(up, src, tmp_path / "out", progress=False)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == ["a.png", "sub/b.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (20, 24)
    reasons = dict((os.path.basename(f), r) for f, r in report.failed)
    assert reasons["notes.txt"] == "not an image file" and "broken image" in reasons["truncated.png"]
    big = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(big)
    with pytest.raises(UpscaleError, match="300 x 200 \\(60,000 pixels\\); the input limit is 50,000 pixels"):
        open_checked(big, 2, max_input=50_000)
    with pytest.raises(UpscaleError, match="output limit"):
        open_checked(big, 4, max_output=100_000)


def test_odd_tiles_for_rrdb_x2_and_outputs_of_every_format(tmp_path):
    up = small_model(tmp_path, SRArch("rrdb", 2, num_feat=8, num_block=1, num_grow_ch=4))
    image = torch.rand(1, 3, 31, 25)
    assert up.run(image, tile=15, tile_pad=7).shape == (1, 3, 62, 50)  # tiles kept on the 2x2 fold
    flat = small_model(tmp_path, SRArch("srvgg", 2, num_feat=8, num_conv=2), nearest=True)
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.tile(np.linspace(0, 59400, 16, dtype=np.uint16), (8, 1))).save(src / "deep.png")
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(src / "deep.tif")  # same stem, other kind
    report = upscale_path(flat, src, tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["deep.png", "deep_tif.png"] and not report.failed
    for ext in ("jpg", "webp", "bmp"):
        upscale_path(flat, src / "deep.png", tmp_path / f"deep.{ext}", progress=False)
        arr = np.asarray(Image.open(tmp_path / f"deep.{ext}").convert("L"), dtype=float)
        assert arr[:, :4].mean() < 40 and arr[:, -4:].mean() > 200  # 16 bits mapped to 8, not clipped to white
    upscale_path(flat, src / "deep.tif", tmp_path / "alpha.jpg", progress=False)
    assert Image.open(tmp_path / "alpha.jpg").mode == "RGB"
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_safetensors_header_describing_an_absurd_model_is_refused_before_anything_is_built(tmp_path, sr_model):
    """A 200-byte file asking for 3,000,000 layers ran past 60 s and 3.8 GB: now it is refused from its header."""
    import json

    from safetensors.torch import save_file

    layers = tmp_path / "layers.safetensors"
    save_file({"body.0.weight": torch.zeros(0)}, layers,
              metadata={"sr_arch": json.dumps({"arch": "srvgg", "scale": 4, "num_conv": 3_000_000})})
    assert layers.stat().st_size < 300
    with pytest.raises(ValueError, match="layers.safetensors: num_conv: must be a whole number from 0 to 1000, got 3000000"):
        load_upscaler(layers)
    # Shapes with a zero in them take no bytes: 1,000 features of 3 layers, in a file of no weights at all.
    empty = {"body.0.weight": torch.zeros(1000, 3, 3, 0), "body.2.weight": torch.zeros(1000, 1000, 3, 0),
             "body.4.weight": torch.zeros(12, 1000, 3, 0)}
    save_file(empty, tmp_path / "hollow.safetensors")
    with pytest.raises(ValueError, match=r"hollow.safetensors describes a srvgg model of [\d,]+ parameters but holds only 0 values"):
        load_upscaler(tmp_path / "hollow.safetensors")
    save_file({f"t{i}": torch.zeros(0) for i in range(10_001)}, tmp_path / "many.safetensors")
    with pytest.raises(ValueError, match="many.safetensors lists 10,001 tensors"):
        load_upscaler(tmp_path / "many.safetensors")
    save_file({"body.0.weight": torch.zeros(1)}, tmp_path / "odd.safetensors", metadata={"sr_arch": '{"layers": 9}'})
    with pytest.raises(ValueError, match="odd.safetensors: the recorded architecture is not one"):
        load_upscaler(tmp_path / "odd.safetensors")
    real = load_upscaler(sr_model)  # a real model still loads and upscales
    out = upscale_image(real, Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)))
    assert out.size == (16, 16) and np.asarray(out).std() > 10


def test_tiling_numbers_are_refused_naming_the_field(tmp_path, sr_model):
    up = load_upscaler(sr_model)
    img = Image.new("RGB", (8, 8), "red")
    for kwargs, message in [({"tile": -5}, "tile: must be 0 (the whole image at once) or at least 8, got -5"),
                            ({"tile_pad": -1}, "tile_pad: must be at least 0 and at most 1024, got -1"),
                            ({"outscale": -2}, "outscale: must be above 0 and at most 16, got -2")]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            upscale_image(up, img, **kwargs)
    img.save(tmp_path / "in.png")
    with pytest.raises(ValueError, match="tile: must be 0"):  # refused once, not as a failure of every file
        upscale_path(up, tmp_path / "in.png", tmp_path / "out", tile=3, progress=False)
