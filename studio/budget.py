"""What a config's time budget buys on this machine, from the speed its earlier runs measured (no gradio here).

Training speed depends on the model, the image size and channels, the batch and the precision, not on the dataset or
the schedule: runs that agree on those are "the same config" here, and their logged images/s is what this one will do.
"""
from __future__ import annotations

import statistics

from pipelines.api import evaluation_share_rules, plan_evaluations
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


def same_speed(row: dict, config: RunConfig, wanted: dict) -> RunConfig | None:
    """The run's config when it trains at this config's speed (None: another model, size or batch)."""
    if row["family"] != config.family or not row["step"]:
        return None
    try:
        theirs = validate_config(parse_yaml(row["config"]))
    except ValueError:  # a config written by an older version
        return None
    return theirs if speed_signature(theirs) == wanted else None


def measured_speed(store: RunStore, config: RunConfig) -> tuple[float, dict] | None:
    """(images/s, its run row) from the newest run of the same speed signature that logged its speed."""
    wanted = speed_signature(config)
    for row in store.list_runs():
        if same_speed(row, config, wanted) is None:
            continue
        values = [m["value"] for m in store.last_metrics(row["name"], "images_per_s", MEASURED_STEPS)]
        if values:
            return statistics.median(values), row
    return None


def measured_sample_seconds(store: RunStore, config: RunConfig) -> tuple[float, dict] | None:
    """(seconds to generate and score one evaluation sample, its run row) from the newest run of the same speed
    signature, extractor and sampler that evaluated; scaled to this config's sampler steps."""
    wanted, e = speed_signature(config), config.evaluation
    for row in store.list_runs():
        theirs = same_speed(row, config, wanted)
        if theirs is None or (theirs.evaluation.extractor, theirs.evaluation.sampler) != (e.extractor, e.sampler):
            continue
        rows = [r for r in store.evaluations(row["name"], "training") if r["num_samples"]]
        if rows:
            per_sample = statistics.median(r["seconds"] / r["num_samples"] for r in rows)
            return per_sample * e.steps / theirs.evaluation.steps, row
    return None


def evaluation_text(store: RunStore, config: RunConfig, images_per_epoch: float | None,
                    speed: float | None) -> tuple[str, float]:
    """What share of the budget the evaluations will take (FD families: from an earlier run's evaluations), and their
    seconds (0 when not known)."""
    e, budget = config.evaluation, config.training.max_minutes * 60
    if not e.every_epochs:
        return "No evaluations (evaluation.every_epochs is 0).", 0.0
    fd = hasattr(e, "final_num_samples")  # else a family scored otherwise (alignment, PSNR): not sized, only skipped
    rules = evaluation_share_rules(sized=fd)
    if not fd:
        return f"Evaluations: {rules}.", 0.0
    found = measured_sample_seconds(store, config)
    if found is None:
        return f"Evaluations: {rules}. Their speed here is not measured yet.", 0.0
    per_sample, row = found
    epochs = budget * speed / images_per_epoch if images_per_epoch and speed else None
    plan = plan_evaluations(budget, per_sample, e.num_samples, e.every_epochs, e.final, e.final_num_samples, epochs)
    source = f"{per_sample:.3g} s a sample, measured by run **{row['name']}**"
    if not plan.samples:
        none = (f"**Evaluations: none fit**: at {source}, fewer than {min(100, e.num_samples)} samples fit in one evaluation's share, so the run "
                "gets no FD, best/ or final evaluation (a longer budget, or fewer evaluation.steps, makes room).")
        return none, 0.0
    sized = f" (sized from {e.num_samples:,})" if plan.samples < e.num_samples else ""
    final = f", and a final one of {plan.final_samples:,}" if plan.final_samples else ""
    text = (f"**Evaluations ≈ {plan.share:.0%} of the budget**: about {plan.count} of {plan.samples:,} samples{sized}, "
            f"≈ {plan.seconds_each:.0f} s each{final}, at {source}.")
    return text, plan.share * budget


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
        text = (f"Ends after {ends}. No run of this model, size and batch has been measured on this machine yet: "
                "the first one's speed will say here what the budget buys.")
        return f"{text} {evaluation_text(store, config, None, None)[0]}" if budget else text
    speed, row = found
    source = f"{speed:,.0f} images/s, measured by run **{row['name']}**"
    run_config = validate_config(parse_yaml(row["config"]))
    images_per_epoch = None
    if row["total_steps"] and run_config.data == config.data:  # the same data: an epoch is as long as there
        images_per_epoch = row["total_steps"] / run_config.training.epochs * config.training.batch_size \
            * config.training.gradient_accumulation_steps
    if budget:
        evaluations, evaluating = evaluation_text(store, config, images_per_epoch, speed)
        images = speed * (budget * 60 - evaluating)  # the evaluations' time is the budget's too
        text = f"**{_minutes(budget)} ≈ {_count(images)} training images** at {source}"
        if images_per_epoch:
            epochs = images / images_per_epoch
            ends_first = epochs < config.training.epochs
            text += (f": about {epochs:,.0f} epochs, so the budget ends the run before its {config.training.epochs} epochs"
                     if ends_first else f"; its {config.training.epochs} epochs end it first, in about "
                     f"{_minutes(config.training.epochs * images_per_epoch / speed / 60)}")
        return f"{text}. {evaluations}"
    if images_per_epoch:
        minutes = config.training.epochs * images_per_epoch / speed / 60
        return f"{config.training.epochs} epochs take about **{_minutes(minutes)}** of training at {source} (no time budget)."
    return f"No time budget: the run ends after {config.training.epochs} epochs. Speed here: {source}."
