"""Prompt alignment during training on `shapes`: images from prompts of every colour-shape-background
combination, read back by the checker, on combinations seen in training and on those held out (data.holdout).
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..data.builtin import COLOURS, SHAPES
from ..metrics.alignment import alignment
from .evaluation import PeriodicEvaluation


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
    """Every N epochs and at the end (not after a person's stop): the share of images whose colour, shape and
    background match their prompt; fires `evaluation` (higher is better) for best/ and plateaus."""

    def __init__(self, config, run, logger: logging.Logger):
        super().__init__(config.evaluation, run, logger)
        self.guidance, self.negative = config.sampling.guidance, config.sampling.negative_prompt  # as the sample grids
        self.seen, self.unseen = combination_prompts(config.data.holdout)

    def read_back(self, family, prompts: list[str], num: int) -> dict[str, float]:
        chosen = [prompts[i % len(prompts)] for i in range(num)]
        images = []
        for start in range(0, num, 64):
            images.append(family.generate(chosen[start:start + 64], 10_000 + start, self.cfg.sampler, self.cfg.steps,
                                          self.guidance, self.negative))
        return alignment(np.concatenate(images), chosen)

    def score(self, trainer) -> dict:
        s, start = trainer.state, time.perf_counter()
        seen = self.read_back(trainer.family, self.seen, self.cfg.num_samples)
        unseen = self.read_back(trainer.family, self.unseen, self.cfg.num_samples) if self.unseen else None
        values = {"align_seen": seen["all"], "align_colour": seen["colour"], "align_shape": seen["shape"],
                  "align_background": seen["background"]}
        if unseen is not None:
            values["align_heldout"] = unseen["all"]
        self.run.store.log_metrics(self.run.name, s.global_step, s.epoch, values)
        seconds = time.perf_counter() - start
        self.log.info("alignment at epoch %d: %s (%.0f s)", s.epoch, " ".join(f"{k}={v:.3f}" for k, v in values.items()), seconds)
        return {"value": seen["all"], "higher_is_better": True, "label": "alignment", "seconds": seconds,
                "scale": f"alignment of {self.cfg.num_samples} images", **values}

