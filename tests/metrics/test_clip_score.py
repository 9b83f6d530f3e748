"""CLIP score with a tiny CLIP model trained in the test on coloured squares and their captions."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.metrics.clip_score import ClipScorer, resolve

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}


def square(colour: str, size: int = 32) -> np.ndarray:
    return np.array(Image.new("RGB", (size, size), COLOURS[colour]))


def tiny_clip(folder):
    """A 1-layer CLIP with a word-level BPE vocabulary, trained contrastively for 60 steps to match squares to
    "a <colour> square", saved as a transformers folder (model and processor)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab, merges = {"<|startoftext|>": 0, "<|endoftext|>": 1}, []
    for word in ["a", "square", *COLOURS]:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        for piece in pieces:
            vocab.setdefault(piece, len(vocab))
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                              tokenizer=CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")))
    torch.manual_seed(0)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    model = CLIPModel(CLIPConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=16, bos_token_id=0,
                                                  eos_token_id=1, pad_token_id=1, **small),
                                 vision_config=dict(image_size=32, patch_size=16, **small), projection_dim=16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    names, rng = list(COLOURS), np.random.default_rng(0)
    for _ in range(60):
        picks = [names[i] for i in rng.integers(0, len(names), 32)]
        inputs = processor(text=[f"a {c} square" for c in picks], images=[Image.fromarray(square(c)) for c in picks],
                           return_tensors="pt", padding=True)
        loss = model(**inputs, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip"))


def test_clip_score_ranks_the_right_caption_above_wrong_ones(clip_folder):
    scorer = ClipScorer(str(clip_folder))
    names = list(COLOURS)
    images = np.stack([square(c) for c in names])
    right = scorer.scores(images, [f"a {c} square" for c in names])
    wrong = scorer.scores(images, [f"a {names[(i + 1) % len(names)]} square" for i in range(len(names))])
    assert ((right >= 0) & (right <= 100)).all()
    assert (right > wrong + 20).all(), (right, wrong)
    gray = images[:, :, :, :1]  # one-channel images are scored as the RGB images of the same gray
    np.testing.assert_allclose(scorer.scores(gray, ["a red square"] * len(names)),
                               scorer.scores(np.repeat(gray, 3, -1), ["a red square"] * len(names)), atol=1e-4)


def test_missing_models_are_named_and_auto_without_a_cached_model_is_off(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="evaluation.clip_model"):
        ClipScorer(str(tmp_path / "nothing"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert resolve("auto") == (None, True) and resolve("")[0] is None and resolve("me/clip") == ("me/clip", False)


def test_text_to_image_training_charts_the_clip_score_on_captioned_folders(tmp_path, clip_folder):
    from pipelines.store import RunStore
    from pipelines.train.run import train
    from tests.train.test_t2i import tiny_t2i

    data = tmp_path / "squares"
    data.mkdir()
    captions = {}
    for i in range(40):
        colour = list(COLOURS)[i % len(COLOURS)]
        Image.fromarray(square(colour, 20)).save(data / f"{i}.png")
        captions[f"{i}.png"] = f"a {colour} square"
    (data / "captions.json").write_text(json.dumps(captions))
    cfg = tiny_t2i(data={"dataset": str(data), "val_fraction": 0.1, "test_fraction": 0.0},
                   sampling={"prompts": ["a red square", "a blue square"]},
                   evaluation={"every_epochs": 1, "num_samples": 8, "steps": 3, "clip_model": str(clip_folder)})
    train(cfg, tmp_path / "runs", name="clip", progress=False)
    store = RunStore(tmp_path / "runs")
    scores = [r["value"] for r in store.metrics("clip", ["clip_score"])]
    assert len(scores) >= 2 and all(0 <= s <= 100 for s in scores)
    assert "align_seen" not in {r["name"] for r in store.metrics("clip")}  # the shapes checker only reads shapes
