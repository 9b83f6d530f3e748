import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from pipelines.data.degrade import bicubic_degrade, crop_to_multiple, degrade, image_seed, realesrgan_degrade
from pipelines.data.pairs import add_degrade_arguments, lr_paths, plan_pairs, prepare_hr, prepare_pairs, run_degrade
from pipelines.data.transforms import open_image

SIZE = 64


def crop(img, box):
    return Image.fromarray(img).crop(box)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Real photos in category folders, plus a corrupt png, a text file and a hidden image."""
    root = tmp_path_factory.mktemp("hr")
    (root / "people").mkdir()
    (root / "food").mkdir()
    (root / ".cache").mkdir()
    astronaut, coffee = photos.astronaut(), photos.coffee()
    Image.fromarray(astronaut).save(root / "people" / "astronaut.png")
    Image.fromarray(coffee).save(root / "food" / "coffee.jpg", quality=95)
    Image.fromarray(photos.camera()).save(root / "camera.png")  # grayscale, directly in --input
    for i, box in enumerate([(0, 0, 256, 256), (256, 0, 512, 256), (0, 256, 256, 512), (256, 256, 512, 512)]):
        crop(astronaut, box).save(root / "people" / f"part{i}.png")
    crop(coffee, (100, 0, 500, 400)).save(root / "food" / "cup.webp")
    (root / "food" / "broken.png").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not an image")
    Image.fromarray(astronaut).save(root / ".cache" / "hidden.png")
    return root


VALID = 8  # astronaut, coffee, camera, 4 parts, cup


def output_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_small_helpers():
    assert lr_paths(Path("out"), Path("cats/deep/a.jpg"), 3) == (
        Path("out/scale_3x/cats/deep/a_lr_3x.png"), Path("out/scale_3x/cats/deep/a_upsampled_3x.png"))
    assert lr_paths(Path("out"), Path("a.png"), 2)[0].as_posix() == "out/scale_2x/a_lr_2x.png"
    assert crop_to_multiple(np.zeros((64, 50, 3), np.uint8), 3).shape == (63, 48, 3)
    assert image_seed("cats/a.png", 4) == image_seed("cats/a.png", 4, 0)
    assert len({image_seed("cats/a.png", 4), image_seed("cats/a.png", 2), image_seed("cats/b.png", 4),
                image_seed("cats/a.png", 4, 1)}) == 4
    with pytest.raises(ValueError, match="'sharpen'"):
        degrade(np.zeros((8, 8, 3), np.uint8), 2, "sharpen", "cubic", np.random.default_rng(0))


def test_bicubic_pairs_names_sizes_stats_and_skipping_on_rerun(photo_folder, tmp_path):
    out = tmp_path / "pairs"
    plan = plan_pairs(photo_folder, out, [4, 2, 3], SIZE, "cubic", "bicubic", 1.0)
    assert len(plan.files) == VALID + 1 and plan.todo_jobs == 3 * (VALID + 1) and plan.done_jobs == 0
    assert "64 px HR -> 16 px LR at x4" in plan.describe() and "64 px HR (cropped to 63) -> 21 px LR at x3" in plan.describe()
    stats = prepare_pairs(plan, progress=False)

    for scale, hr_side in [(2, 64), (3, 63), (4, 64)]:
        for rel in ["people/astronaut.png", "food/coffee.jpg", "camera.png", "food/cup.webp"]:
            lr_path, up_path = lr_paths(out, rel, scale)
            with Image.open(lr_path) as lr, Image.open(up_path) as up:
                assert lr.size == (hr_side // scale,) * 2 and lr.mode == "RGB"
                assert up.size == (hr_side, hr_side)
    assert (out / "scale_2x" / "camera_lr_2x.png").is_file()
    assert not list(out.rglob("broken*")) and not list(out.rglob("hidden*")) and not list(out.rglob(".*"))
    assert len(list(out.rglob("*.png"))) == 3 * 2 * VALID

    saved = json.loads((out / "processing_stats.json").read_text())
    assert saved == stats
    assert stats["total_processed"] == VALID and stats["already_done"] == 0 and stats["total_failed"] == 1
    assert stats["failures"][0]["file"] == "food/broken.png" and stats["failures"][0]["reason"]
    assert stats["avg_processing_time"] > 0 and stats["finished_at"]
    assert stats["settings"] == {"input": str(photo_folder.resolve()), "output": str(out.resolve()), "scales": [2, 3, 4],
                                 "size": SIZE, "method": "cubic", "degradation": "bicubic", "sample": 1.0, "seed": 0,
                                 "hr_resize": "lanczos"}

    before = output_bytes(out)
    again = plan_pairs(photo_folder, out, [2, 3, 4], SIZE, "cubic", "bicubic", 1.0)
    assert again.done_jobs == 3 * VALID and again.todo_jobs == 3  # only the corrupt file is left
    stats2 = prepare_pairs(again, progress=False)
    assert stats2["total_processed"] == 0 and stats2["already_done"] == VALID and stats2["total_failed"] == 1
    assert output_bytes(out) == before

    # Remade pairs (a deleted file) come out byte for byte the same.
    lr_paths(out, "people/part2.png", 3)[0].unlink()
    assert prepare_pairs(plan_pairs(photo_folder, out, [2, 3, 4], SIZE, "cubic", "bicubic", 1.0), progress=False)["total_processed"] == 1
    assert output_bytes(out) == before

    # Another degradation into the same folder would mix two kinds of pairs: refused, naming what changed.
    with pytest.raises(ValueError, match=r"--output: .*method cubic -> lanczos"):
        plan_pairs(photo_folder, out, [2], SIZE, "lanczos", "bicubic", 1.0)
    with pytest.raises(ValueError, match=r"degradation bicubic -> realesrgan"):
        plan_pairs(photo_folder, out, [2], SIZE, "cubic", "realesrgan", 1.0)
    more = plan_pairs(photo_folder, out, [8], SIZE, "cubic", "bicubic", 0.5, seed=1)  # another scale: fine
    assert more.todo_jobs > 0 and prepare_pairs(more, progress=False)["settings"]["scales"] == [2, 3, 4, 8]


def test_bicubic_lr_is_faithful_and_rebuildable(tmp_path):
    # 256 px: at 64 px the astronaut is so dense in detail that even a perfect x2 pair only reaches ~21 dB.
    (tmp_path / "in").mkdir()
    Image.fromarray(photos.astronaut()).save(tmp_path / "in" / "astronaut.png")
    prepare_pairs(plan_pairs(tmp_path / "in", tmp_path / "out", [2], 256, "cubic", "bicubic", 1.0), progress=False)
    hr = prepare_hr(open_image(tmp_path / "in" / "astronaut.png"), 256)
    lr_path, up_path = lr_paths(tmp_path / "out", Path("astronaut.png"), 2)
    lr, up = np.asarray(Image.open(lr_path)), np.asarray(Image.open(up_path))
    assert (lr == bicubic_degrade(crop_to_multiple(hr, 2), 2)).all()  # what training rebuilds matches the files
    assert psnr(up, hr) > 25
    assert psnr(np.full_like(hr, hr.mean()), hr) < 15  # the scale of the number: a flat image


def hr_photos():
    astronaut = prepare_hr(Image.fromarray(photos.astronaut()), 96)
    coffee = prepare_hr(Image.fromarray(photos.coffee()), 96)
    return [astronaut, coffee]


def test_realesrgan_is_seeded_plausible_and_unlike_bicubic():
    for hr in hr_photos():
        plain = bicubic_degrade(hr, 4)
        outputs = [realesrgan_degrade(hr, 4, np.random.default_rng(seed)) for seed in range(6)]
        for seed, lr in enumerate(outputs):
            assert lr.shape == (24, 24, 3) and lr.dtype == np.uint8
            assert (lr == realesrgan_degrade(hr, 4, np.random.default_rng(seed))).all()
            assert not (lr == plain).all()
            assert lr.std() > 8
            assert abs(lr.astype(float).mean() - plain.astype(float).mean()) < 25
        assert len({lr.tobytes() for lr in outputs}) == len(outputs)

    gray = np.asarray(Image.fromarray(photos.camera()).resize((60, 60)))[:, :, None]
    for seed in range(4):
        lr = realesrgan_degrade(gray, 3, np.random.default_rng(seed))
        assert lr.shape == (20, 20, 1) and lr.std() > 8
    tiny = hr_photos()[0][:16, :16]  # 2 px LR: kernels larger than the image must still work
    assert all(realesrgan_degrade(tiny, 8, np.random.default_rng(s)).shape == (2, 2, 3) for s in range(10))


def test_realesrgan_pairs_same_with_two_workers(photo_folder, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    stats1 = prepare_pairs(plan_pairs(photo_folder, one, [2, 4], SIZE, "cubic", "realesrgan", 1.0, seed=3), progress=False)
    stats2 = prepare_pairs(plan_pairs(photo_folder, two, [2, 4], SIZE, "cubic", "realesrgan", 1.0, seed=3), workers=2, progress=False)
    assert stats1["total_processed"] == stats2["total_processed"] == VALID
    assert stats2["failures"] == stats1["failures"] and stats2["total_failed"] == 1
    files = output_bytes(one)
    assert len(files) == 2 * 2 * VALID and files == output_bytes(two)

    other_seed = tmp_path / "other"
    prepare_pairs(plan_pairs(photo_folder, other_seed, [2], SIZE, "cubic", "realesrgan", 1.0, seed=4), progress=False)
    name = "scale_2x/people/astronaut_lr_2x.png"
    assert output_bytes(other_seed)[name] != files[name]


def test_sample_takes_about_half_and_is_seeded(photo_folder, tmp_path):
    plan = plan_pairs(photo_folder, tmp_path, [2], SIZE, "cubic", "bicubic", 0.5)
    assert len(plan.chosen) == round((VALID + 1) * 0.5) and set(plan.chosen) <= set(plan.files)
    assert plan.chosen == plan_pairs(photo_folder, tmp_path, [2], SIZE, "cubic", "bicubic", 0.5).chosen
    assert "chosen with --sample 0.5" in plan.describe()
    stats = prepare_pairs(plan, progress=False)
    assert stats["total_processed"] + stats["total_failed"] == len(plan.chosen)
    assert len(list((tmp_path / "scale_2x").rglob("*_lr_2x.png"))) == stats["total_processed"]
    assert len(plan_pairs(photo_folder, tmp_path, [2], SIZE, "cubic", "bicubic", 0.01).chosen) == 1


def test_output_inside_input_is_not_read_back_and_name_clashes_are_failures(tmp_path):
    Image.fromarray(photos.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(photos.astronaut()).save(tmp_path / "coffee.jpg")  # same output names as coffee.png
    plan = plan_pairs(tmp_path, tmp_path / "pairs", [2], 32, "lanczos", "bicubic", 1.0)
    assert "1 file(s) share a name" in plan.describe()
    stats = prepare_pairs(plan, progress=False)
    assert stats["total_processed"] == 1 and stats["failures"] == [{"file": "coffee.png", "reason": "same output names as coffee.jpg"}]
    assert len(plan_pairs(tmp_path, tmp_path / "pairs", [2], 32, "lanczos", "bicubic", 1.0).files) == 2
    with pytest.raises(ValueError, match="--output: must not be the --input"):
        plan_pairs(tmp_path, tmp_path, [2], 32, "lanczos", "bicubic", 1.0)


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_degrade_arguments(parser)
    return parser.parse_args(list(argv))


def test_run_degrade_asks_and_cancel_writes_nothing(photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = parse("--input", str(photo_folder), "--output", str(out), "--scales", "2", "--size", "32", "--quiet")
    prompts = []
    assert run_degrade(args, input_fn=lambda prompt: prompts.append(prompt) or "n") == 1
    assert prompts == ["Proceed? [y/N] "] and not out.exists()
    assert "32 px HR -> 16 px LR at x2" in capsys.readouterr().out

    assert run_degrade(args, input_fn=lambda prompt: "yes") == 0
    printed = capsys.readouterr().out
    assert f"Processed {VALID} files" in printed and "food/broken.png" in printed and "processing_stats.json" in printed
    auto = parse("--input", str(photo_folder), "--output", str(out), "--scales", "2", "--size", "32", "--quiet", "--auto")
    assert run_degrade(auto, input_fn=lambda prompt: pytest.fail("--auto must not ask")) == 0
    assert "(8 already done)" in capsys.readouterr().out


@pytest.mark.parametrize("flags,named", [
    (["--input", "MISSING"], "--input"),
    (["--scales", "9"], "--scales"),
    (["--scales", "4", "--size", "12"], "--size"),
    (["--sample", "0"], "--sample"),
    (["--workers", "0"], "--workers"),
])
def test_bad_flags_are_named(photo_folder, tmp_path, capsys, flags, named):
    argv = ["--input", str(photo_folder), "--output", str(tmp_path / "out"), "--auto", *flags]
    if "MISSING" in argv:
        argv[argv.index("MISSING")] = str(tmp_path / "missing")
    assert run_degrade(parse(*argv)) == 2
    assert named in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_bad_method_and_empty_input(photo_folder, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse("--input", "a", "--output", "b", "--method", "bilinear")
    assert "--method" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--method"):
        plan_pairs(photo_folder, tmp_path, [2], SIZE, "bilinear", "bicubic", 1.0)
    with pytest.raises(ValueError, match="--degradation"):
        plan_pairs(photo_folder, tmp_path, [2], SIZE, "cubic", "esrgan", 1.0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="--input: no images"):
        plan_pairs(tmp_path / "empty", tmp_path / "out", [2], SIZE, "cubic", "bicubic", 1.0)
