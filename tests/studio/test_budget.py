"""What the Train tab says a time budget buys: the speed an earlier run of the same model, size and batch measured."""
import pytest

from pipelines.api import train
from pipelines.store import RunStore
from studio.budget import budget_text
from tests.conftest import tiny_config


def test_the_budget_is_turned_into_images_and_epochs_from_an_earlier_runs_speed(tmp_path):
    train(tiny_config(training={"epochs": 2}), tmp_path, progress=False)
    store = RunStore(tmp_path)
    speed = store.last_metrics("ddpm-digits-8", "images_per_s", 1)[0]["value"]

    # Another schedule, the same speed; more epochs than 5 minutes of the fastest CPU train.
    same = tiny_config(training={"epochs": 100_000, "max_minutes": 5})
    text = budget_text(store, same)
    assert "measured by run **ddpm-digits-8**" in text and "5 min ≈ " in text and "training images" in text
    assert "the budget ends the run before its 100000 epochs" in text
    images = float(text.split("≈ ")[1].split(" training")[0].replace(",", "").replace(" million", "e6"))
    assert images > 0.5 * speed * 300  # the median of the run's logged speeds, over 5 minutes

    other = tiny_config(training={"epochs": 3000, "max_minutes": 5, "batch_size": 32})  # another batch: unmeasured
    assert "No run of this model, size and batch has been measured" in budget_text(store, other)


def test_the_budget_line_says_what_share_the_evaluations_take(tmp_path):
    from pipelines.api import plan_evaluations

    evaluation = {"every_epochs": 1, "num_samples": 32, "steps": 4, "final": True, "final_split": "val", "final_num_samples": 24}
    train(tiny_config(training={"epochs": 2}, evaluation=evaluation), tmp_path, progress=False)
    store = RunStore(tmp_path)
    rows = store.evaluations("ddpm-digits-8", "training")
    assert len(rows) == 2

    config = tiny_config(training={"epochs": 3000, "max_minutes": 5}, evaluation={**evaluation, "every_epochs": 100_000})
    text = budget_text(store, config)
    per_sample = sorted(r["seconds"] / r["num_samples"] for r in rows)
    # Far fewer than 100,000 epochs fit in 5 minutes: the closing evaluation only, and the final one.
    plan = plan_evaluations(300.0, sum(per_sample) / 2, 32, 100_000, True, 24, epochs_in_budget=99)  # (the median of two)
    assert plan.count == 1 and "about 1 of 32 samples" in text and "and a final one of 24" in text
    assert f"**Evaluations ≈ {plan.share:.0%} of the budget**" in text
    assert "measured by run **ddpm-digits-8**" in text.split("Evaluations")[1]
    # Fewer training images than the budget alone buys (evaluations off): the evaluations' time is the budget's.
    off = tiny_config(training={"epochs": 3000, "max_minutes": 5})
    assert "No evaluations (evaluation.every_epochs is 0)" in budget_text(store, off)
    assert images(text) == pytest.approx(images(budget_text(store, off)) * (1 - plan.share), rel=0.01, abs=1)

    # Another evaluation sampler: its speed here is not known; the rules are said instead.
    other = tiny_config(training={"epochs": 3000, "max_minutes": 5}, evaluation={**evaluation, "sampler": "ddim"})
    assert "each evaluation during training at most 15% of the budget" in budget_text(store, other)
    assert "Their speed here is not measured yet" in budget_text(store, other)


def images(text: str) -> float:
    return float(text.split("≈ ")[1].split(" training")[0].replace(",", "").replace(" million", "e6"))
