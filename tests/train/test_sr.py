"""The super-resolution family end to end on scikit-image's photos: training, validation, stages, pairs, resume."""
import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.cli import main as cli
from pipelines.config import ConfigError, validate_config
from pipelines.families.sr.vgg import vgg19_features
from pipelines.families.sr.model import load_upscaler
from pipelines.sample.images import label_px, line_px
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.train.test_training import StopAt


def tiny_sr(**sections):
    raw = {"family": "sr", "data": {"dataset": "photos", "image_size": 64},
           "model": {"size": "ultra_lite", "scale": 4},
           "sr": {"patch_size": 32, "patches_per_epoch": 64},
           "training": {"epochs": 4, "batch_size": 8, "learning_rate": 1e-3, "warmup_steps": 2, "checkpoint_every_epochs": 2,
                        "sample_every_epochs": 2, "log_every_steps": 4, "mixed_precision": "no"},
           "evaluation": {"every_epochs": 1}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return validate_config(raw)


def metric(store, name, key):
    return [r["value"] for r in store.metrics(name) if r["name"] == key]


def test_training_beats_its_first_evaluation_and_the_model_upscales(tmp_path):
    ws = tmp_path / "ws"
    cfg = tiny_sr(model={"scale": 2}, sr={"patches_per_epoch": 128}, training={"epochs": 6})
    row = train(cfg, ws, name="sr", progress=False)
    assert row["status"] == "completed"
    store = RunStore(ws)
    psnr = metric(store, "sr", "psnr")
    assert len(psnr) == 6 and psnr[-1] > psnr[0] + 0.5, psnr  # measured: 25.3 -> 26.3 dB
    assert len(set(metric(store, "sr", "psnr_bicubic"))) == 1  # the same held-out inputs every time
    assert store.get_run("sr")["best_metric"] == "PSNR" and store.get_run("sr")["best_value"] == pytest.approx(max(psnr))
    strip = np.asarray(Image.open(ws / "sr" / "samples" / "epoch_6.png"))
    text = 4 + 2 * line_px(label_px(strip.shape[1], 0))  # a title (epoch, step) and the headers (sized by the width)
    images = strip[text + 4:]  # under the headers LR | bicubic | SR | HR: four images in a row, not blank
    assert 3.5 < images.shape[1] / images.shape[0] < 4.5 and images.std() > 20
    assert (strip[:text] < 128).any() and (strip[:text] > 250).mean() > 0.6  # the title and the headers
    assert "final evaluation of best/ on 1 test images" in (ws / "sr" / "log.txt").read_text()
    up = load_upscaler(ws / "sr")  # final/ of the run
    assert up.scale == 2 and up.meta["run"] == "sr"
    src = tmp_path / "small.png"
    Image.fromarray(np.asarray(Image.open(ws / "sr" / "samples" / "epoch_6.png"))[:16, :16]).save(src)
    assert cli(["upscale", "--model", str(ws / "sr"), "--input", str(src), "--output", str(tmp_path / "big.png"),
                "--outscale", "3", "--tile", "8", "--quiet"]) == 0  # x2 model, then Lanczos
    assert Image.open(tmp_path / "big.png").size == (48, 48)


def test_a_tiny_swinir_trains_and_exports_the_official_layout(tmp_path):
    from safetensors.torch import load_file

    from tests.sample.test_swinir import official_swinir

    ws = tmp_path / "ws"
    tiny = {"size": "swinir_lite", "scale": 2, "embed_dim": 24, "depths": [2, 2]}  # the lightweight layout, smaller
    cfg = tiny_sr(model=tiny, sr={"patch_size": 32, "patches_per_epoch": 64}, training={"epochs": 4, "learning_rate": 1e-3})
    assert train(cfg, ws, name="swin", progress=False)["status"] == "completed"
    psnr = metric(RunStore(ws), "swin", "psnr")
    assert len(psnr) == 4 and psnr[-1] > psnr[0] + 0.5, psnr
    up = load_upscaler(ws / "swin")
    assert (up.arch.arch, up.arch.upsampler, up.scale, up.arch.img_size) == ("swinir", "pixelshuffledirect", 2, 16)
    state = load_file(ws / "swin" / "final" / "sr_model.safetensors")  # what upstream's strict load_state_dict needs
    official = official_swinir(24, [2, 2], [6, 6], "pixelshuffledirect", 2, img_size=16)
    assert {k: tuple(v.shape) for k, v in state.items()} == official
    torch.save({"params": state}, tmp_path / "SwinIR-S_x2.pth")  # as a release: fine-tuning starts from it
    cfg = tiny_sr(model=tiny, sr={"patch_size": 48, "init_weights": str(tmp_path / "SwinIR-S_x2.pth")}, training={"epochs": 1})
    assert train(cfg, ws, name="tuned", progress=False)["status"] == "completed"  # 24 px masks this time
    assert "started from the weights in" in (ws / "tuned" / "log.txt").read_text()
    with pytest.raises(ConfigError) as err:
        tiny_sr(model={"size": "swinir_lite", "scale": 2}, sr={"patch_size": 40})
    assert err.value.errors[0][0] == "sr.patch_size" and "8-pixel window" in err.value.errors[0][1]


def test_stop_then_resume_equals_training_straight_through(tmp_path):
    cfg = tiny_sr(sr={"degradation": "realesrgan"})  # random degradations: the resumed run must draw the same ones
    straight = train(cfg, tmp_path / "a", name="r", progress=False)
    assert train(cfg, tmp_path / "b", name="r", progress=False, extra_callbacks=[StopAt(step=11)])["status"] == "stopped"
    resumed = train(resume=tmp_path / "b" / "r", progress=False)
    assert straight["step"] == resumed["step"]
    a = load_upscaler(tmp_path / "a" / "r" / "final").model.state_dict()
    b = load_upscaler(tmp_path / "b" / "r" / "final").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_stage_two_uses_the_discriminator_and_vgg_when_it_can(tmp_path):
    ws = tmp_path / "ws"
    cfg = tiny_sr(sr={"gan_start_epoch": 1}, training={"epochs": 2})
    train(cfg, ws, name="no_vgg", progress=False)
    log = (ws / "no_vgg" / "log.txt").read_text()
    assert "without the perceptual loss: no VGG19 weights" in log
    assert log.count("saved best") == 2  # stage 2's PSNR is not compared with stage 1's: best/ starts afresh
    store = RunStore(ws)
    assert metric(store, "no_vgg", "d_loss") and "d_loss" not in {r["name"] for r in store.metrics("no_vgg") if r["step"] <= 4}
    (ws / "weights").mkdir()
    features = vgg19_features()  # torchvision's layout and names, random weights
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, ws / "weights" / "vgg19-dcbb9e9d.pth")
    train(cfg, ws, name="vgg", progress=False)
    assert "perceptual loss with" in (ws / "vgg" / "log.txt").read_text()
    assert max(metric(store, "vgg", "perceptual")) > 0
    assert load_upscaler(ws / "vgg").scale == 4


def test_training_from_prepared_pairs(tmp_path):
    import skimage.data

    hr = tmp_path / "hr"
    (hr / "people").mkdir(parents=True)
    (hr / "things").mkdir()
    Image.fromarray(skimage.data.astronaut()).save(hr / "people" / "astronaut.png")
    Image.fromarray(skimage.data.chelsea()).save(hr / "people" / "cat.png")
    Image.fromarray(skimage.data.coffee()).save(hr / "things" / "coffee.png")
    Image.fromarray(skimage.data.rocket()).save(hr / "things" / "rocket.png")
    Image.fromarray(skimage.data.camera()).save(hr / "things" / "rocket.jpg")  # same name: it has no pair of its own
    (hr / "things" / "broken.png").write_bytes(b"\x89PNG not really")
    pairs = tmp_path / "pairs"
    assert cli(["degrade", "--input", str(hr), "--output", str(pairs), "--scales", "2", "4", "--size", "64", "--auto", "--quiet"]) == 0
    ws = tmp_path / "ws"
    cfg = tiny_sr(data={"dataset": str(hr), "val_fraction": 0.25, "test_fraction": 0.0},
                  sr={"source": "pairs", "pairs_dir": str(pairs)}, training={"epochs": 2})
    assert train(cfg, ws, name="pairs", progress=False)["status"] == "completed"
    log = (ws / "pairs" / "log.txt").read_text()
    assert "3 HR images of 64 px" in log and "broken.png" in log
    assert "rocket.png: shares its name with another image" in log
    wrong = tiny_sr(data={"dataset": str(hr), "image_size": 128}, sr={"source": "pairs", "pairs_dir": str(pairs)})
    with pytest.raises(ValueError, match="data.image_size: the pairs .* were prepared at 64 px"):
        train(wrong, ws, name="wrong", progress=False)


@pytest.mark.parametrize("sections,field", [
    ({"model": {"size": "standard", "scale": 3}}, "model.scale"),
    ({"sr": {"patch_size": 30}}, "sr.patch_size"),
    ({"sr": {"gan_start_epoch": 1, "patch_size": 36}}, "sr.patch_size"),
    ({"sr": {"gan_start_epoch": 0}}, "sr.gan_start_epoch"),
    ({"model": {"size": "standard", "scale": 2}, "sr": {"patch_size": 34}}, "sr.patch_size"),
    ({"sr": {"source": "pairs"}}, "sr.pairs_dir"),
    ({"sr": {"gan_start_epoch": 4}}, "sr.gan_start_epoch"),
    ({"model": {"size": "huge"}}, "model.size"),
    ({"model": {"size": "swinir_real", "scale": 2}}, "model.scale"),
    ({"model": {"size": "lite", "depths": [2, 2]}}, "model.depths"),
    ({"model": {"size": "swinir_lite", "embed_dim": 20}}, "model.embed_dim"),
])
def test_bad_settings_name_their_field(sections, field):
    with pytest.raises(ConfigError) as err:
        tiny_sr(**sections)
    assert err.value.errors[0][0] == field
