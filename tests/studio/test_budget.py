"""What the Train tab says a time budget buys: the speed an earlier run of the same model, size and batch measured."""
from pipelines.api import train
from pipelines.store import RunStore
from studio.budget import budget_text
from tests.conftest import tiny_config


def test_the_budget_is_turned_into_images_and_epochs_from_an_earlier_runs_speed(tmp_path):
    train(tiny_config(training={"epochs": 2}), tmp_path, progress=False)
    store = RunStore(tmp_path)
    speed = store.last_metrics("ddpm-digits-8", "images_per_s", 1)[0]["value"]

    same = tiny_config(training={"epochs": 3000, "max_minutes": 5})  # another schedule: the same speed
    text = budget_text(store, same)
    assert "measured by run **ddpm-digits-8**" in text and "5 min ≈ " in text and "training images" in text
    assert "the budget ends the run before its 3000 epochs" in text
    images = float(text.split("≈ ")[1].split(" training")[0].replace(",", "").replace(" million", "e6"))
    assert images > 0.5 * speed * 300  # the median of the run's logged speeds, over 5 minutes

    other = tiny_config(training={"epochs": 3000, "max_minutes": 5, "batch_size": 32})  # another batch: unmeasured
    assert "No run of this model, size and batch has been measured" in budget_text(store, other)
