"""The studio's engine: data, models, the training loop, samplers and the run store. Never imports the UI.

Public API (what the app and scripts call):
    train(config, workspace, ...)            -> run row      pipelines.train.run
    load(checkpoint)                         -> model         pipelines.sample.generate.load_diffusion
    sample(model, sampler, steps, num, ...)  -> uint8 images  pipelines.sample.generate.generate
    interpolate(model, seed_a, seed_b, ...)  -> uint8 frames
    compare(checkpoints, ...)                -> labelled rows
"""
from __future__ import annotations


def train(*args, **kwargs):
    from .train.run import train as _train

    return _train(*args, **kwargs)


def load(checkpoint, device="cpu"):
    from .sample.generate import load_diffusion

    return load_diffusion(checkpoint, device)


def sample(model, *args, **kwargs):
    from .sample.generate import generate

    return generate(model, *args, **kwargs)


def interpolate(model, *args, **kwargs):
    from .sample.generate import interpolate as _interpolate

    return _interpolate(model, *args, **kwargs)


def compare(checkpoints, *args, **kwargs):
    from .sample.generate import compare as _compare

    return _compare(checkpoints, *args, **kwargs)
