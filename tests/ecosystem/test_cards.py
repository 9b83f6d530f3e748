"""Model cards: best/ and final/ carry a README.md in the Hub's format whose metadata parses and names the metrics
with their extractor and sample count, with the sample grid beside it; the folder still loads in stock diffusers."""
import numpy as np
import yaml

from pipelines.api import read_card
from pipelines.ecosystem.cards import GRID, README, CardContent, Score, render
from pipelines.families import FAMILIES


def metric_names(meta: dict) -> list[str]:
    return [m["name"] for result in meta["model-index"][0]["results"] for m in result["metrics"]]


def test_final_and_best_have_cards_with_metrics(tracked_run):
    _, folder, row, _ = tracked_run
    meta, body = read_card(folder / "final")
    assert meta["library_name"] == "diffusers" and meta["pipeline_tag"] == "unconditional-image-generation"
    assert "diffusers" in meta["tags"] and "datasets" not in meta  # a built-in set is no Hub dataset
    names = metric_names(meta)
    assert names == ["FD (digits-cnn, 24 samples vs 86 train images)", "KID (digits-cnn, 24 samples vs 86 train images)"]
    assert meta["model-index"][0]["name"] == row["name"]
    assert f"![samples]({GRID})" in body and (folder / "final" / GRID).read_bytes() == (folder / "samples" / "epoch_2.png").read_bytes()
    assert "DDPMPipeline.from_pretrained" in body and "training time:" in body and "on cpu" in body
    config = yaml.safe_load(body.split("```yaml\n")[1].split("```")[0])
    assert config["name"] == row["name"] and config["data"]["dataset"] == "digits"  # the config...
    assert config["notify"]["webhook"] == "(set; not shown)" and "127.0.0.1" not in body  # ...without the webhook's URL
    # best/ also names the final evaluation on held-out images, with its sample count.
    best_meta, _ = read_card(folder / "best")
    final_scores = [m for r in best_meta["model-index"][0]["results"] if r["dataset"].get("split") == "val" for m in r["metrics"]]
    assert final_scores and final_scores[0]["name"].startswith("FD (digits-cnn, 16 samples vs")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left
    # huggingface_hub reads the metadata as the Hub will: the evaluation results with their names.
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "best" / README)
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "unconditional-image-generation"
    assert [(r.metric_type, r.dataset_split) for r in card.data.eval_results] == [
        ("fd", "train"), ("kid", "train"), ("fd", "val"), ("kid", "val")]


def test_final_with_its_card_loads_in_stock_diffusers(tracked_run):
    from diffusers import DDPMPipeline

    _, folder, _, _ = tracked_run
    assert (folder / "final" / README).is_file()
    pipeline = DDPMPipeline.from_pretrained(folder / "final")
    images = pipeline(batch_size=2, num_inference_steps=2, output_type="np").images
    assert images.shape == (2, 8, 8, 1) and np.isfinite(images).all()


def test_every_family_card_renders_with_its_own_facts():
    """Family-specific bits come from each family's card.py: the metadata parses for all of them."""
    tags = {}
    for name in FAMILIES:
        facts = CardContent(f"{name}_run", "best", name, {"step": 10, "epoch": 2, "num_classes": 0, "scale": 4},
                          f"family: {name}\n", "digits", 16, "cpu", "no", 75.0,
                          [Score("psnr", "psnr", 25.5, "test", 10, "final evaluation on held-out images")])
        meta, body = yaml.safe_load(render(facts).split("---\n")[1]), render(facts)
        tags[name] = meta["pipeline_tag"]
        assert metric_names(meta) == ["psnr"] and "1 min 15 s" in body and "## How to load" in body
    assert tags == {"ddpm": "unconditional-image-generation", "gan": "unconditional-image-generation",
                    "sr": "image-to-image", "t2i": "text-to-image"}
    # A family without card facts (one from outside the package) gets a generic card.
    body = render(CardContent("x", "final", "elsewhere", {}, "family: elsewhere\n", "digits", 8, "cpu", "no", 1.0))
    assert 'api.load("path/to/x/final")' in body and "pipeline_tag: unconditional-image-generation" in body


def test_the_card_is_in_the_folder_before_the_folder_appears(tmp_path):
    """Crash-safe: the card is written into the hidden copy that is renamed into place, never after."""
    from pipelines.train.callbacks import Callback
    from pipelines.train.run import train
    from tests.conftest import tiny_config

    seen = []

    class Watch(Callback):  # runs after the card writer (extra callbacks come last)
        def on_save(self, trainer, folder, target):
            seen.append((target.name, folder.name.startswith(f".tmp-{target.name}-"), (folder / README).is_file(),
                         (folder / GRID).is_file(), (target / README).is_file()))

    train(tiny_config(training={"epochs": 1}), tmp_path, progress=False, extra_callbacks=[Watch()])
    assert ("final", True, True, True, False) in seen
    assert all(has_card for name, _, has_card, _, _ in seen if name in ("best", "final"))
    assert not any(has_card for name, _, has_card, _, _ in seen if name.startswith("checkpoint-"))
