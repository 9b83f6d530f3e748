"""The engine's public API: what the app, scripts and benchmarks call (the studio imports nothing else of the
engine but its config and store types).

(It lives here rather than in `pipelines/__init__.py` because `pipelines.train` and `pipelines.sample` are
subpackages: functions of the same names on the package would be shadowed when those are imported.)

    train(config, workspace, ...)            -> the run's store row
    load(checkpoint)                         -> the folder's model, loaded by the family that wrote it
    sample(model, SampleRequest(...))        -> uint8 N x H x W x C images (each model uses the fields it has)
    interpolate(model, request, seed_b, frames) -> uint8 frames (interpolate_prompts: between two prompts)
    compare(checkpoints, request)            -> [Column(label, images, seconds, ...)], one checkpoint at a time
    compare_samplers(checkpoint, [(sampler, steps)], request) -> [Column]
    load_upscaler(path) / upscale_image(...) -> super-resolution
    chain(generator, upscaler, request, ...) -> ChainResult: low-res, bicubic and upscaled images, stage times
    dataset_preview(data_config, workspace)  -> Preview: counts, classes, captions, skipped files, a grid, cache state
    FAMILIES, family_of(folder), families_of_kind(...) -> the model families (pipelines.families)
    push_model(checkpoint, repo, private, revision) -> the Hub URL (HubError: one line saying why not)
    export_run(run_folder, out) / import_run(zip, workspace) -> a run as a zip; the imported run's name
    tracker_locations(store, name), check_trackers(config), read_card(folder) -> trackers and model cards
"""
from __future__ import annotations

# Runs
from .checkpoints import list_checkpoints, run_checkpoints

# Data
from .data import BUILTIN, check_dataset
from .data.degrade import KINDS as DEGRADATIONS
from .data.degrade import METHODS as RESIZE_METHODS
from .data.pairs import plan_pairs, prepare_pairs
from .data.preview import Preview, dataset_preview
from .data.progress import describe as describe_preparation
from .data.transforms import IMAGE_SUFFIXES

# Trackers, model cards, the Hub, portable runs
from .ecosystem.cards import read_card
from .ecosystem.hub import HubError, push_model
from .ecosystem.portable import PortableError, export_run, import_run
from .ecosystem.trackers import check_trackers, tracker_locations

# Models and sampling
from .families import FAMILIES, Chart, FamilySpec, Form, family_of
from .families import names as families_of_kind
from .metrics.extractors import check_extractor, metric_label
from .sample.chain import chain, save_chain
from .sample.checks import check_tiling
from .sample.compare import Column, compare_samplers, comparison_grid
from .sample.compare import compare_checkpoints as compare
from .sample.diffusion import SAMPLERS, Cancelled
from .sample.images import (
    labelled_rows,
    make_grid,
    pil_images,
    save_gif,
    save_mp4,
    upscale_for_display,
)
from .sample.models import interpolate_model as interpolate
from .sample.models import interpolate_prompts_model as interpolate_prompts
from .sample.models import load_model as load
from .sample.models import sample_model as sample
from .sample.request import SampleRequest
from .sample.upscale_images import (
    UpscaleError,
    bicubic,
    load_upscaler,
    open_checked,
    upscale_image,
)
from .train.plots import smooth
from .train.run import prepare_run, train

__all__ = [
    "FAMILIES", "FamilySpec", "Form", "Chart", "family_of", "families_of_kind",
    "load", "sample", "SampleRequest", "interpolate", "interpolate_prompts", "compare", "compare_samplers",
    "comparison_grid", "Column", "chain", "save_chain", "load_upscaler", "upscale_image", "UpscaleError", "bicubic",
    "open_checked", "check_tiling", "SAMPLERS", "Cancelled", "labelled_rows", "make_grid", "pil_images", "save_gif",
    "save_mp4", "upscale_for_display",
    "train", "prepare_run", "list_checkpoints", "run_checkpoints", "check_extractor", "metric_label", "smooth",
    "BUILTIN", "check_dataset", "DEGRADATIONS", "RESIZE_METHODS", "plan_pairs", "prepare_pairs", "dataset_preview",
    "Preview", "describe_preparation", "IMAGE_SUFFIXES",
    "push_model", "HubError", "export_run", "import_run", "PortableError", "check_trackers", "tracker_locations",
    "read_card",
]
