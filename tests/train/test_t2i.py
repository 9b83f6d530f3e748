"""Text-to-image on tiny models: data sources with captions, the embedding cache, guidance, resume, sampling."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.cli import main as cli
from pipelines.config import load_config, validate_config
from pipelines.data import load_splits
from pipelines.families.t2i.text import TextEncoder, cached_embeddings
from pipelines.sample.models import load_model, sample_model
from pipelines.train.run import train
from tests.train.test_training import StopAt

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def tiny_t2i(**sections):
    raw = {"family": "t2i", "data": {"dataset": "shapes", "image_size": 16, "synthetic_count": 200},
           "model": {"base_channels": 16, "channel_mults": [1, 2], "cross_attention_resolutions": [8], "attention_heads": 2},
           "diffusion": {"num_train_timesteps": 100},
           "training": {"epochs": 2, "batch_size": 32, "warmup_steps": 2, "checkpoint_every_epochs": 1, "sample_every_epochs": 2,
                        "num_sample_images": 4, "sample_steps": 4, "log_every_steps": 2, "mixed_precision": "no"},
           "evaluation": {"every_epochs": 0}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return validate_config(raw)


def test_the_seed_config_shape_reads_as_written():
    cfg = load_config(ROOT / "configs" / "train_config.yaml")
    assert (cfg.family, cfg.data.dataset, cfg.training.epochs) == ("t2i", "shapes", 200)
    assert cfg.data.val_fraction + cfg.data.test_fraction == pytest.approx(0.1)
    custom = validate_config({"family": "t2i", "data": {"dataset_name": "custom", "dataset_path": "/data/cats"}})
    assert custom.data.dataset == "/data/cats"
    assert validate_config({"family": "t2i", "data": {"dataset_name": "user/captions"}}).data.dataset == "user/captions"


def test_captions_from_folders_and_saved_hub_datasets(tmp_path):
    from datasets import Dataset

    a, b = tmp_path / "json", tmp_path / "jsonl"
    for folder in (a, b):
        folder.mkdir()
        for i, colour in enumerate(["red", "blue"]):
            Image.new("RGB", (20, 20), colour).save(folder / f"img{i}.png")
    (a / "captions.json").write_text(json.dumps({"img0.png": "a red square", "img1.png": "a blue square"}))
    (b / "metadata.jsonl").write_text("\n".join(json.dumps({"file_name": f"img{i}.png", "text": f"plain {c}"})
                                                for i, c in enumerate(["red", "blue"])))
    hub = tmp_path / "hub"
    Dataset.from_dict({"image": [Image.new("RGB", (20, 20), "green")] * 2, "text": ["green one", "green two"]}).save_to_disk(hub)
    for folder, expected in ((a, {"a red square", "a blue square"}), (b, {"plain red", "plain blue"}), (hub, {"green one", "green two"})):
        cfg = tiny_t2i(data={"dataset": str(folder), "val_fraction": 0, "test_fraction": 0}).data
        assert set(load_splits(cfg).train.captions) == expected


def test_embeddings_are_cached_per_encoder(tmp_path):
    encoder = TextEncoder("minilm", 8)
    calls = []
    encode = encoder.encode
    encoder.encode = lambda texts: calls.append(len(texts)) or encode(texts)
    first = cached_embeddings(encoder, ["a red circle", ""], tmp_path)
    second = cached_embeddings(encoder, ["a red circle", ""], tmp_path)
    assert calls == [2] and torch.equal(first[0], second[0]) and first[0].shape == (2, 8, 384)
    assert first[1][1].sum() == 2  # the empty caption: just the start and end tokens
    assert len(list((tmp_path / "text-embeddings").rglob("complete"))) == 1


def test_trains_guides_and_samples_from_a_prompt(tmp_path):
    row = train(tiny_t2i(), tmp_path, name="t2i", progress=False)
    assert row["status"] == "completed"
    model = load_model(tmp_path / "t2i" / "final")
    prompt = "a red circle on a blue background"
    plain = sample_model(model, sampler="ddim", steps=5, num=2, seed=0, guidance=1.0, prompt=prompt)
    guided = sample_model(model, sampler="ddim", steps=5, num=2, seed=0, guidance=5.0, prompt=prompt)
    negative = sample_model(model, sampler="ddim", steps=5, num=2, seed=0, guidance=5.0, prompt=prompt, negative_prompt="a green square")
    assert plain.shape == (2, 16, 16, 3) and plain.std() > 5
    assert np.abs(plain.astype(int) - guided).mean() > 1 and np.abs(guided.astype(int) - negative).mean() > 1
    with pytest.raises(ValueError, match="give a prompt"):
        sample_model(model, sampler="ddim", steps=5, num=2, seed=0)
    out = tmp_path / "out.png"
    assert cli(["sample", "--checkpoint", str(tmp_path / "t2i" / "final"), "--prompt", prompt, "--num", "4",
                "--steps", "4", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 16
    from diffusers import UNet2DConditionModel

    assert UNet2DConditionModel.from_pretrained(tmp_path / "t2i" / "final" / "unet").config.cross_attention_dim == 384


def test_stop_then_resume_equals_training_straight_through(tmp_path):
    cfg = tiny_t2i(training={"epochs": 3})
    straight = train(cfg, tmp_path / "a", name="r", progress=False)
    assert train(cfg, tmp_path / "b", name="r", progress=False, extra_callbacks=[StopAt(step=8)])["status"] == "stopped"
    resumed = train(resume=tmp_path / "b" / "r", progress=False)
    assert resumed["step"] == straight["step"]
    a, b = (load_model(tmp_path / d / "r" / "final").unet.state_dict() for d in "ab")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_alignment_is_measured_on_seen_and_held_out_combinations(tmp_path):
    cfg = tiny_t2i(data={"holdout": ["red circle"]}, evaluation={"every_epochs": 1, "num_samples": 8, "steps": 3})
    train(cfg, tmp_path, name="a", progress=False)
    from pipelines.store import RunStore

    names = {r["name"] for r in RunStore(tmp_path).metrics("a")}
    assert {"align_seen", "align_heldout", "align_colour", "align_shape", "align_background"} <= names
    assert "red circle" not in " ".join(load_splits(cfg.data).train.captions)


def test_hub_rows_with_image_urls_and_caption_lists_as_coco_has(tmp_path):
    """COCO caption sets hold image URLs and five captions per image: the URLs are fetched (here from a local
    server), the first caption is used, and a URL that fails is skipped and counted."""
    import functools
    import http.server
    import threading

    from datasets import Dataset

    served = tmp_path / "served"
    served.mkdir()
    for colour in ("red", "blue"):
        Image.new("RGB", (20, 20), colour).save(served / f"{colour}.png")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        Dataset.from_dict({"url": [f"{base}/red.png", f"{base}/blue.png", f"{base}/gone.png"],
                           "sentences": [["a red square", "red"], ["a blue square", "blue"], ["lost"]]}).save_to_disk(tmp_path / "coco")
        cfg = validate_config({"family": "t2i", "data": {"dataset_name": "coco", "val_fraction": 0, "test_fraction": 0,
                                                         "image_size": 16}, "evaluation": {"split": "train"}})
        cfg.data.dataset = str(tmp_path / "coco")  # the mapping's columns (url, sentences), with a local copy of the rows
        splits = load_splits(cfg.data, tmp_path / "ws")
        assert len(requests) == 3
        # Another resolution is another prepared dataset, but the images were downloaded once, into the workspace.
        again = load_splits(cfg.data.model_copy(update={"image_size": 8}), tmp_path / "ws")
        assert sorted(requests) == ["/blue.png", "/gone.png", "/gone.png", "/red.png"]  # only the failed one again
    finally:
        server.shutdown()
    assert sorted(splits.train.captions) == ["a blue square", "a red square"] and len(again.train) == 2
    assert splits.train.all_images()[splits.train.captions.index("a red square")][0].float().mean() > 150  # red channel
    assert len(splits.skipped) == 1 and "gone.png" in splits.skipped[0][1]
