"""The prepared-dataset cache: built once, reused, updated incrementally, never used when incomplete."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.config import DataConfig
from pipelines.data import StopRequested, load_splits, prepare
from pipelines.data.cache import IMAGES
from pipelines.data.preview import dataset_preview
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.conftest import ROOT, tiny_config


def photo(seed: int, size=(24, 20)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for i in range(40):
        (root / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
        photo(i).save(root / ("a" if i % 2 else "b") / f"{i:03d}.png")
    return root


def cfg_of(folder, **kw):
    return DataConfig(dataset=str(folder), image_size=8, val_fraction=0, test_fraction=0, workers=1, **kw)


def caches(ws: Path) -> list[Path]:
    root = ws / "cache" / "datasets"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_runs_and_evaluate_share_one_preparation(tmp_path, folder, monkeypatch):
    from pipelines.data import preparation
    from pipelines.metrics.evaluate import evaluate_checkpoint

    prepared = []
    real = preparation.prepare_records
    monkeypatch.setattr("pipelines.data.prepare_records", lambda *a, **k: prepared.append(1) or real(*a, **k))
    cfg = tiny_config(data={"dataset": str(folder), "channels": 3, "num_samples": None, "workers": 1, "test_fraction": 0.2},
                      training={"epochs": 1})
    first = train(cfg, tmp_path, name="first", progress=False)
    second = train(cfg, tmp_path, name="second", progress=False)
    assert first["status"] == second["status"] == "completed" and len(prepared) == 1
    result = evaluate_checkpoint(Path(second["folder"]) / "final", num=8, extractor="hog-colour", steps=2)
    assert result.num_real == 8 and len(prepared) == 1  # the evaluation read the same cache
    assert len(caches(tmp_path)) == 1
    assert "prepared 40 images" in (Path(first["folder"]) / "log.txt").read_text()
    assert RunStore(tmp_path).get_run("second")["phase"] is None


def test_added_changed_and_removed_files_are_the_only_ones_decoded(tmp_path, folder):
    ws = tmp_path / "ws"
    first = prepare(cfg_of(folder), ws)
    assert first.meta["decoded"] == 40
    photo(100).save(folder / "a" / "new.png")
    changed = folder / "b" / "000.png"
    photo(101).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new modification time, whatever the clock
    (folder / "a" / "001.png").unlink()
    second = prepare(cfg_of(folder), ws)
    assert second.meta["decoded"] == 2 and second.meta["reused"] == 38 and len(second) == 40
    assert caches(ws) == [second.folder]  # the older state, of files that are gone, is removed
    fresh = prepare(cfg_of(folder), tmp_path / "fresh")
    assert np.array_equal(np.asarray(second.pixels), np.asarray(fresh.pixels)) and second.names == fresh.names
    row = second.names.index("b/000.png")
    assert not np.array_equal(np.asarray(second.pixels[row]), np.asarray(first.pixels[first.names.index("b/000.png")]))


def test_a_truncated_cache_is_rebuilt_not_used(tmp_path, folder):
    ws = tmp_path / "ws"
    good = np.asarray(prepare(cfg_of(folder), ws).pixels).copy()
    images = caches(ws)[0] / IMAGES
    with open(images, "r+b") as f:
        f.truncate(images.stat().st_size // 2)
    again = prepare(cfg_of(folder), ws)
    assert again.meta["decoded"] == 40 and np.array_equal(np.asarray(again.pixels), good)
    (caches(ws)[0] / "rows.json").unlink()
    assert prepare(cfg_of(folder), ws).meta["decoded"] == 40


def test_a_preparation_killed_midway_leaves_nothing_used(tmp_path, folder):
    ws = tmp_path / "ws"
    started = tmp_path / "started"
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from pipelines.config import DataConfig
from pipelines.data import prepare
def progress(done, total, rate):
    open({str(started)!r}, "w").write(str(done))
    time.sleep(3600)  # killed here, half-way through writing
prepare(DataConfig(dataset={str(folder)!r}, image_size=8, workers=1), {str(ws)!r}, progress)
"""
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        while not started.exists():  # event-driven: the child says when it is writing
            assert child.poll() is None, "the preparation ended before it could be killed"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    root = ws / "cache" / "datasets"
    assert [p for p in root.iterdir() if not p.name.startswith(".tmp-")] == []  # nothing that looks complete
    result = prepare(cfg_of(folder), ws)
    assert result.meta["decoded"] == 40 and [p.name for p in root.iterdir()] == [result.folder.name]


def test_parallel_and_one_worker_preparations_are_byte_identical(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(150):
        photo(i, (30 + i % 7, 20 + i % 5)).save(root / f"{i:03d}.jpg", quality=90)
    (root / "075.jpg").write_bytes(b"corrupt")
    one = prepare(DataConfig(dataset=str(root), image_size=16, workers=1), tmp_path / "one")
    two = prepare(DataConfig(dataset=str(root), image_size=16, workers=2), tmp_path / "two")
    assert len(one) == 149 and np.array_equal(np.asarray(one.pixels), np.asarray(two.pixels))
    assert one.names == two.names and one.skipped == two.skipped == [("075.jpg", "not an image file")]


def test_a_stop_during_preparation_leaves_no_cache(tmp_path, folder):
    with pytest.raises(StopRequested):
        prepare(cfg_of(folder), tmp_path / "ws", should_stop=lambda: True)
    assert caches(tmp_path / "ws") == []


def test_exif_rotated_photos_train_upright(tmp_path):
    """A phone stores a portrait photo as landscape pixels with an orientation tag: it trains upright."""
    upright = np.zeros((32, 16, 3), np.uint8)
    upright[:16] = 255  # white on top, black below
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote: 32 wide, 16 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    (tmp_path / "phone").mkdir()
    stored.save(tmp_path / "phone" / "portrait.jpg", exif=exif, quality=95)
    image = load_splits(DataConfig(dataset=str(tmp_path / "phone"), image_size=8, val_fraction=0, test_fraction=0,
                                   center_crop=False)).train.all_images()[0].float().mean(0)
    assert image[:3].mean() > 200 and image[-3:].mean() < 50


def test_oversized_images_loops_and_unreadable_folders_are_counted(tmp_path, folder, monkeypatch):
    (folder / "a" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "locked").mkdir()
    real_scandir = os.scandir
    monkeypatch.setattr("pipelines.data.folder.os.scandir",
                        lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied")) if isinstance(p, (str, Path)) and Path(p).name == "locked" else real_scandir(p))
    big = folder / "b" / "huge.png"
    photo(7, (400, 300)).save(big)
    splits = load_splits(cfg_of(folder, max_megapixels=0.1))
    reasons = {Path(name).name: reason for name, reason in splits.skipped}
    assert "symlink loop" in reasons["loop"] and "not readable" in reasons["locked"]
    assert reasons["huge.png"].startswith("too many pixels: 400 x 300")
    assert len(splits.train) == 40


def test_nothing_usable_names_the_first_skipped_files(tmp_path):
    (tmp_path / "bad").mkdir()
    for name in ("x.png", "y.jpg"):
        (tmp_path / "bad" / name).write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"no usable images .* \(2 skipped: x.png: not an image file; y.jpg: not an image file\)"):
        load_splits(DataConfig(dataset=str(tmp_path / "bad")))


def test_preview_of_a_folder_with_bad_files(tmp_path, folder):
    (folder / "b" / "broken.png").write_bytes(b"junk")
    (folder / "notes.txt").write_text("hello")
    ws = tmp_path / "ws"
    quick = dataset_preview(cfg_of(folder), ws, prepare=False)
    assert quick.num_images == 41 and quick.cache_state.startswith("not prepared yet") and not quick.prepared
    full = dataset_preview(cfg_of(folder), ws)
    assert full.cache_state.startswith("prepared just now (41 images decoded, 0 reused")
    assert full.num_images == 40 and full.class_counts == {"a": 20, "b": 20}
    assert dict(full.skipped) == {"notes.txt": "not an image file", "b/broken.png": "not an image file"}
    assert len(full.grid) == 32 and full.grid[0].shape == (8, 8, 3) and full.grid[0].std() > 10
    text = full.text()
    assert "skipped 2 files" in text and "b/broken.png: not an image file" in text and "classes: a 20, b 20" in text
    again = dataset_preview(cfg_of(folder), ws)
    assert again.cache_state.startswith("prepared (40 images")


def test_the_data_command_prints_the_preview(tmp_path, folder):
    out = subprocess.run([sys.executable, "-m", "pipelines", "data", "--dataset", str(folder), "--workspace",
                          str(tmp_path / "ws"), "--set", "data.image_size=8", "--set", "data.channels=3", "--grid", str(tmp_path / "grid.png")],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "40 images" in out and "classes: a 20, b 20" in out
    assert Image.open(tmp_path / "grid.png").size[0] > 64
    meta = json.loads(next((tmp_path / "ws" / "cache" / "datasets").glob("*/meta.json")).read_text())
    assert meta["shape"] == [40, 3, 8, 8]


def test_a_cache_edited_in_place_is_rebuilt_not_trained_on(tmp_path, folder, caplog):
    """Probe: a same-size edit of images.u8 (pixels zeroed) or rows.json (labels swapped) was trained on silently."""
    ws = tmp_path / "ws"
    first = prepare(cfg_of(folder), ws)
    good, labels = np.asarray(first.pixels).copy(), first.labels.copy()
    images = caches(ws)[0] / IMAGES
    size = images.stat().st_size
    with open(images, "r+b") as f:  # the last image zeroed, in place
        f.seek(size - good[0].size)
        f.write(bytes(good[0].size))
    assert images.stat().st_size == size
    again = prepare(cfg_of(folder), ws)
    assert again.meta["decoded"] == 40 and np.array_equal(np.asarray(again.pixels), good)
    assert "was incomplete or damaged (images.u8 is not what was written (edited or damaged) in images 0 to 39)" in caplog.text

    rows = caches(ws)[0] / "rows.json"
    data = json.loads(rows.read_text())
    data["labels"] = data["labels"][::-1]  # classes swapped, same size
    rows.write_text(json.dumps(data))
    assert sorted(data["labels"]) == sorted(labels.tolist()) and data["labels"] != labels.tolist()
    third = prepare(cfg_of(folder), ws)
    assert third.meta["decoded"] == 40 and third.labels.tolist() == labels.tolist()
    assert "rows.json is not what was written" in caplog.text
    assert prepare(cfg_of(folder), ws).meta["decoded"] == 40  # the rebuilt cache is used as it is (nothing decoded again)
