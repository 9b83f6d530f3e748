"""The engine's public API: what the app, scripts and benchmarks call.

(It lives here rather than in `pipelines/__init__.py` because `pipelines.train` and `pipelines.sample` are
subpackages: functions of the same names on the package would be shadowed when those are imported.)

    train(config, workspace, ...)            -> the run's store row
    load(checkpoint)                         -> DiffusionModel
    sample(model, sampler, steps, num, ...)  -> uint8 N x H x W x C images
    interpolate(model, seed_a, seed_b, ...)  -> uint8 frames
    compare(checkpoints, ...)                -> [(label, images, seconds)]
"""
from __future__ import annotations

from .sample.generate import DiffusionModel, compare, generate as sample, interpolate, load_diffusion as load
from .train.run import prepare_run, train

__all__ = ["train", "prepare_run", "load", "sample", "interpolate", "compare", "DiffusionModel"]
