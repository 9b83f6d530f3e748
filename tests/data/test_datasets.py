import json

import numpy as np
import pytest
from PIL import Image

from pipelines.config import DataConfig
from pipelines.data import dataset_slug, load_splits
from pipelines.data.builtin import COLOURS, SHAPES


def not_blank(images):
    return images.float().std() > 5


@pytest.mark.parametrize("name,classes", [("digits", 10), ("faces", 2), ("photos", None), ("shapes", 3)])
def test_builtin_datasets(name, classes):
    splits = load_splits(DataConfig(dataset=name, image_size=16, synthetic_count=200))
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == {"digits": 1797, "faces": 200}.get(name, 200)
    assert splits.train.all_images().shape[1:] == (3, 16, 16)
    assert not_blank(splits.train.all_images())
    if classes:
        assert splits.num_classes == classes
    assert not splits.skipped


def test_shapes_captions_match_what_is_drawn_and_are_deterministic():
    a = load_splits(DataConfig(dataset="shapes", image_size=32, synthetic_count=50, val_fraction=0, test_fraction=0))
    b = load_splits(DataConfig(dataset="shapes", image_size=32, synthetic_count=50, val_fraction=0, test_fraction=0))
    assert (a.train.all_images() == b.train.all_images()).all()
    for img, label, caption in zip(a.train.all_images(), a.train.labels, a.train.captions):
        words = caption.split()  # "a red circle on a blue background"
        assert words[2] == SHAPES[label] and words[1] in COLOURS and words[5] in COLOURS and words[1] != words[5]
        corner = img[:, 0, 0].numpy()  # shapes never cover the corner pixels fully; it shows the background
        assert np.abs(corner.astype(int) - COLOURS[words[5]]).max() < 60


def test_split_is_seeded_disjoint_and_num_samples_limits():
    cfg = DataConfig(dataset="digits", image_size=8, num_samples=100, val_fraction=0.1, test_fraction=0.2)
    s1, s2 = load_splits(cfg), load_splits(cfg)
    assert (len(s1.train), len(s1.val), len(s1.test)) == (70, 10, 20)
    assert (s1.test.all_images() == s2.test.all_images()).all()
    other = load_splits(cfg.model_copy(update={"split_seed": 1}))
    assert not (other.test.all_images() == s1.test.all_images()).all()


def write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "pets"
    rng = np.random.default_rng(0)
    rgb = lambda: Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))  # noqa: E731
    write(root / "cats" / "a.png", rgb())
    write(root / "cats" / "gray.png", rgb().convert("L"))
    write(root / "cats" / "deep" / "rgba.png", rgb().convert("RGBA"))
    write(root / "dogs" / "pal.gif", rgb().convert("P"))
    write(root / "dogs" / "b.jpg", rgb())
    sixteen = (rng.integers(0, 65535, (20, 20))).astype(np.uint16)
    write(root / "dogs" / "sixteen.png", Image.fromarray(sixteen))
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "dogs" / "fake.png").write_bytes(b"this is not a png")
    good = root / "cats" / "a.png"
    (root / "cats" / "truncated.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (root / "captions.json").write_text(json.dumps({"cats/a.png": "a noisy cat"}))
    (root / "dogs" / "metadata.jsonl").write_text(json.dumps({"file_name": "b.jpg", "text": "a noisy dog"}) + "\n")
    return root


def test_image_folder_classes_captions_modes_and_bad_files(messy_folder):
    splits = load_splits(DataConfig(dataset=str(messy_folder), image_size=16, val_fraction=0, test_fraction=0))
    assert splits.class_names == ["cats", "dogs"]
    assert len(splits.train) == 6
    assert splits.train.all_images().shape[1:] == (3, 16, 16)
    skipped = {p.split("/")[-1]: reason for p, reason in splits.skipped}
    assert set(skipped) == {"notes.txt", "fake.png", "truncated.png"}
    assert skipped["notes.txt"] == "not an image file" and skipped["fake.png"] == "not an image file"
    assert "truncated" in skipped["truncated.png"]
    captions = dict(zip(splits.train.captions, splits.train.labels.tolist()))
    assert captions["a noisy cat"] == 0 and captions["a noisy dog"] == 1
    # The 16-bit image keeps its contrast instead of clipping to white.
    assert not_blank(splits.train.all_images())
    assert dataset_slug(str(messy_folder)) == "pets"


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="data.dataset: no usable images"):
        load_splits(DataConfig(dataset=str(tmp_path / "empty")))


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_splits(DataConfig(dataset=str(tmp_path / "nope")))


def hf_rows(n=12):
    rng = np.random.default_rng(0)
    return {"img": [Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)) for _ in range(n)],
            "fine_label": [i % 3 for i in range(n)], "text": [f"picture {i}" for i in range(n)]}


def test_hugging_face_dataset_through_load_dataset(tmp_path):
    """A local dataset repository (parquet files) goes through datasets.load_dataset, as a hub id would."""
    import datasets

    features = datasets.Features({"img": datasets.Image(), "fine_label": datasets.ClassLabel(names=["a", "b", "c"]),
                                  "text": datasets.Value("string")})
    repo = tmp_path / "my-hub-dataset"
    (repo / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(hf_rows(), features=features).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    cfg = DataConfig(dataset=str(repo), image_size=8, image_column="img", label_column="fine_label", caption_column="text",
                     num_samples=9, val_fraction=0, test_fraction=0)
    splits = load_splits(cfg)
    assert len(splits.train) == 9 and splits.class_names == ["a", "b", "c"]
    assert all(c.startswith("picture ") for c in splits.train.captions)


def test_hugging_face_saved_dataset_and_bad_column(tmp_path):
    import datasets

    datasets.Dataset.from_dict(hf_rows()).save_to_disk(str(tmp_path / "saved"))
    splits = load_splits(DataConfig(dataset=str(tmp_path / "saved"), image_size=8, image_column="img", label_column="fine_label"))
    assert splits.num_classes == 3
    with pytest.raises(ValueError, match="column 'image' not in"):
        load_splits(DataConfig(dataset=str(tmp_path / "saved"), image_size=8))


def test_shapes_holdout_keeps_combinations_out():
    from pipelines.config import ConfigError, validate_config

    cfg = DataConfig(dataset="shapes", image_size=16, synthetic_count=300, holdout=["red circle", "blue square"])
    captions = load_splits(cfg).train.captions + load_splits(cfg).test.captions
    assert len(captions) >= 270 and not any(c.startswith(("a red circle", "a blue square")) for c in captions)
    assert any(c.startswith("a red square") for c in captions) and any(c.startswith("a blue circle") for c in captions)
    with pytest.raises(ConfigError) as err:
        validate_config({"data": {"dataset": "shapes", "holdout": ["pink circle"]}})
    assert err.value.errors[0][0] == "data.holdout" and "'pink circle'" in err.value.errors[0][1]
