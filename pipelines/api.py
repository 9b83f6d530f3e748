"""The engine's public API: what the app, scripts and benchmarks call.

(It lives here rather than in `pipelines/__init__.py` because `pipelines.train` and `pipelines.sample` are
subpackages: functions of the same names on the package would be shadowed when those are imported.)

    train(config, workspace, ...)            -> the run's store row
    load(checkpoint)                         -> DiffusionModel, GANModel or TextModel (by the folder's files)
    sample(model, sampler, steps, num, ...)  -> uint8 N x H x W x C images (a GAN ignores sampler and steps;
                                                a TextModel needs prompt=...)
    interpolate(model, seed_a, seed_b, ...)  -> uint8 frames (interpolate_prompts: between two prompts)
    compare(checkpoints, ...)                -> [Column(label, images, seconds, ...)], one checkpoint at a time
    compare_samplers(checkpoint, [(sampler, steps)], ...) -> [Column]
    load_upscaler(path) / upscale_image(...) -> super-resolution (pipelines.sample.upscale, .upscale_images)
    chain(generator, upscaler, ...)          -> ChainResult: low-res, bicubic and upscaled images, stage times
    dataset_preview(data_config, workspace)  -> Preview: counts, classes, captions, skipped files, a grid, cache state
"""
from __future__ import annotations

from .sample.gan import GANModel
from .sample.generate import DiffusionModel
from .sample.t2i import TextModel
from .sample.upscale import load_upscaler
from .sample.upscale_images import upscale_image
from .sample.chain import chain
from .sample.compare import Column, compare_checkpoints as compare, compare_samplers, comparison_grid
from .sample.models import interpolate_model as interpolate, interpolate_prompts_model as interpolate_prompts
from .sample.models import load_model as load, sample_model as sample
from .train.run import prepare_run, train
from .data.preview import Preview, dataset_preview
from .data.progress import describe as describe_preparation
from .sample.images import make_grid, upscale_for_display

__all__ = ["train", "prepare_run", "load", "sample", "interpolate", "interpolate_prompts", "compare", "compare_samplers",
           "comparison_grid", "Column", "chain", "load_upscaler", "upscale_image", "DiffusionModel", "GANModel", "TextModel", "dataset_preview", "Preview",
           "describe_preparation", "make_grid", "upscale_for_display"]
