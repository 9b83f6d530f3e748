"""Prompt alignment during training. On `shapes`: images from prompts of every colour-shape-background
combination, read back by the checker, on combinations seen in training and on those held out (data.holdout).
With a CLIP model (evaluation.clip_model): the CLIP score of the images with their prompts, on any data (its
prompts there: the held-out captions, else the test prompts).
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ...data.builtin import COLOURS, SHAPES
from ...metrics.alignment import alignment
from ...metrics.clip_score import ClipScorer
from ...sample.request import Cancelled
from ...train.evaluation import PeriodicEvaluation, StopWatch


def shape_prompt(colour: str, shape: str, background: str) -> str:
    return f"a {colour} {shape} on a {background} background"  # the captions' own template


def combination_prompts(holdout: list[str]) -> tuple[list[str], list[str]]:
    """(prompts of seen combinations, prompts of held-out ones), every background for each, in a fixed mixed order."""
    held = {tuple(h.split()) for h in holdout}
    seen, unseen = [], []
    for colour in COLOURS:
        for shape in SHAPES:
            for background in COLOURS:
                if background != colour:
                    (unseen if (colour, shape) in held else seen).append(shape_prompt(colour, shape, background))
    rng = np.random.default_rng(0)
    return [seen[i] for i in rng.permutation(len(seen))], [unseen[i] for i in rng.permutation(len(unseen))]


class AlignmentEvaluator(PeriodicEvaluation):
    """Every N epochs and at the end (not after a person's stop): on shapes, the share of images whose colour,
    shape and background match their prompt; with a CLIP scorer, their CLIP score. Fires `evaluation` (higher is
    better; the checker's share on shapes, else the CLIP score) for best/ and plateaus. `seen` holds the prompts
    scored first: seen combinations on shapes, else the held-out captions."""

    def __init__(self, config, run, logger: logging.Logger, prompts: list[str], clip_model: str | None = None,
                 clip_local_only: bool = False):
        super().__init__(config.evaluation, run, logger)
        self.guidance, self.negative = config.sampling.guidance, config.sampling.negative_prompt  # as the sample grids
        self.shapes, self.clip_model, self.clip_local_only, self.clip = config.data.dataset == "shapes", clip_model, clip_local_only, None
        self.seen, self.unseen = combination_prompts(config.data.holdout) if self.shapes else (prompts, [])

    def on_start(self, trainer) -> None:
        if self.clip_model and trainer.is_main:  # only the main process scores; a bad name fails now, not later
            self.clip = ClipScorer(self.clip_model, trainer.accelerator.device, local_only=self.clip_local_only)
            self.log.info("CLIP score with %s", self.clip_model)

    def images(self, family, prompts: list[str], num: int, stop=None) -> tuple[np.ndarray, list[str]]:
        chosen, images = [prompts[i % len(prompts)] for i in range(num)], []
        for start in range(0, num, 64):
            if stop is not None and stop():  # a person's stop: between batches of 64
                raise Cancelled(f"stopped after {start} of {num} alignment images")
            images.append(family.generate(chosen[start:start + 64], 10_000 + start, self.cfg.sampler, self.cfg.steps,
                                          self.guidance, self.negative))
        return np.concatenate(images), chosen

    def score(self, trainer) -> dict:
        s, start, stop = trainer.state, time.perf_counter(), StopWatch(trainer)
        images, prompts = self.images(trainer.family, self.seen, self.cfg.num_samples, stop)
        values = {}
        if self.shapes:
            seen = alignment(images, prompts)
            values = {"align_seen": seen["all"], "align_colour": seen["colour"], "align_shape": seen["shape"],
                      "align_background": seen["background"]}
            if self.unseen:
                values["align_heldout"] = alignment(*self.images(trainer.family, self.unseen, self.cfg.num_samples, stop))["all"]
        if self.clip is not None:
            values["clip_score"] = float(self.clip.scores(images, prompts).mean())
        self.run.store.log_metrics(self.run.name, s.global_step, s.epoch, values)
        seconds = time.perf_counter() - start
        self.log.info("alignment at epoch %d: %s (%.0f s)", s.epoch, " ".join(f"{k}={v:.3f}" for k, v in values.items()), seconds)
        if self.shapes:
            return {"value": values["align_seen"], "higher_is_better": True, "label": "alignment", "seconds": seconds,
                    "scale": f"alignment of {self.cfg.num_samples} images", **values}
        return {"value": values["clip_score"], "higher_is_better": True, "label": "CLIP score", "seconds": seconds,
                "scale": f"CLIP score ({self.clip.name}) of {self.cfg.num_samples} images", **values}
