"""What a config's time budget buys on this machine, from the speed its earlier runs measured (no gradio here).

Training speed depends on the model, the image size and channels, the batch and the precision, not on the dataset or
the schedule: runs that agree on those are "the same config" here, and their logged images/s is what this one will do.
"""
from __future__ import annotations

import statistics

from pipelines.config import RunConfig, parse_yaml, validate_config
from pipelines.store import RunStore

# Sections that change only what is trained on, for how long, and how it is scored: not the speed of a step.
NOT_SPEED = ("name", "data", "training", "evaluation", "early_stopping", "notify")
SPEED_TRAINING_KEYS = ("batch_size", "gradient_accumulation_steps", "mixed_precision")
MEASURED_STEPS = 20  # the newest logged images/s values averaged


def speed_signature(config: RunConfig) -> dict:
    dumped = config.model_dump(mode="json")
    signature = {k: v for k, v in dumped.items() if k not in NOT_SPEED}
    signature["data"] = {k: dumped["data"][k] for k in ("image_size", "channels")}
    signature["training"] = {k: dumped["training"].get(k) for k in SPEED_TRAINING_KEYS}
    return signature


def measured_speed(store: RunStore, config: RunConfig) -> tuple[float, dict] | None:
    """(images/s, its run row) from the newest run of the same speed signature that logged its speed."""
    wanted = speed_signature(config)
    for row in store.list_runs():
        if row["family"] != config.family or not row["step"]:
            continue
        try:
            if speed_signature(validate_config(parse_yaml(row["config"]))) != wanted:
                continue
        except ValueError:  # a config written by an older version
            continue
        values = [m["value"] for m in store.last_metrics(row["name"], "images_per_s", MEASURED_STEPS)]
        if values:
            return statistics.median(values), row
    return None


def _count(n: float) -> str:
    return f"{n:,.0f}" if n < 1e6 else f"{n / 1e6:.1f} million"


def _minutes(m: float) -> str:
    if m < 1:
        return f"{m * 60:.0f} s"
    if m < 10:  # 1.5 min is not "2 min"
        return f"{m:.1f}".removesuffix(".0") + " min"
    return f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h"


def budget_text(store: RunStore, config: RunConfig) -> str:
    """A sentence or two: what the budget (or the epochs) buy at the measured speed, and which ends the run."""
    found = measured_speed(store, config)
    budget = config.training.max_minutes
    if found is None:
        ends = f"a budget of {_minutes(budget)}" if budget else f"{config.training.epochs} epochs"
        return (f"Ends after {ends}. No run of this model, size and batch has been measured on this machine yet: "
                "the first one's speed will say here what the budget buys.")
    speed, row = found
    source = f"{speed:,.0f} images/s, measured by run **{row['name']}**"
    run_config = validate_config(parse_yaml(row["config"]))
    images_per_epoch = None
    if row["total_steps"] and run_config.data == config.data:  # the same data: an epoch is as long as there
        images_per_epoch = row["total_steps"] / run_config.training.epochs * config.training.batch_size \
            * config.training.gradient_accumulation_steps
    if budget:
        images = speed * budget * 60
        text = f"**{_minutes(budget)} ≈ {_count(images)} training images** at {source}"
        if images_per_epoch:
            epochs = images / images_per_epoch
            ends_first = epochs < config.training.epochs
            text += (f": about {epochs:,.0f} epochs, so the budget ends the run before its {config.training.epochs} epochs"
                     if ends_first else f"; its {config.training.epochs} epochs end it first, in about "
                     f"{_minutes(config.training.epochs * images_per_epoch / speed / 60)}")
        return text + ". Evaluations take part of the budget."
    if images_per_epoch:
        minutes = config.training.epochs * images_per_epoch / speed / 60
        return f"{config.training.epochs} epochs take about **{_minutes(minutes)}** of training at {source} (no time budget)."
    return f"No time budget: the run ends after {config.training.epochs} epochs. Speed here: {source}."
