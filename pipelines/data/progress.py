"""How preparation progress is shown: a bar on the command line, a sentence in the run store."""
from __future__ import annotations

import math


PREPARING = "preparing data"  # the usual task; others (generating DreamBooth's class images) name themselves


def describe(done: int, total: int, rate: float, task: str = PREPARING) -> str:
    """"preparing data: 12,345 / 100,000 images, 850 images/s, about 2 min left" """
    text = f"{task}: {done:,} / {total:,} images"
    if rate > 0 and done < total:
        left = (total - done) / rate
        when = f"{math.ceil(left / 60)} min" if left >= 90 else f"{max(1, round(left))} s"
        text += f", {rate:,.0f} images/s" if rate >= 1 else f", {1 / rate:,.1f} s/image"
        text += f", about {when} left"
    return text


class PreparationBar:
    """A tqdm bar fed by the (done, total, rate) calls of a preparation."""

    def __init__(self, disable: bool = False):
        self.bar, self.disable = None, disable

    def __call__(self, done: int, total: int, rate: float, task: str = PREPARING) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:  # a new bar for each task (a run may prepare its data, then generate and prepare more)
            self.bar = tqdm(total=total, desc=task, unit="image", disable=self.disable)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
            self.bar = None
