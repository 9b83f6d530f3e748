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
    propose_data(data_config, workspace) -> Proposal: the channels and size a folder's images have, if not the config's
    FAMILIES, family_of(folder), families_of_kind(...) -> the model families (pipelines.families)
    push_model(checkpoint, repo, private, revision) -> the Hub URL (HubError: one line saying why not)
    local_folder(path_or_hub_id), is_repo_id(text) -> a folder here (a Hub id downloaded once into the Hub cache)
    export_run(run_folder, out) / import_run(zip, workspace) -> a run as a zip; the imported run's name
    tracker_locations(store, name), check_trackers(config), read_card(folder) -> trackers and model cards
    parse_sweep(specs), plan_sweep(config, axes, sample, seed), queue_sweep(store, plans, start) -> a grid of runs
    sweep_table(store, runs, keys), sweep_curves(store, runs, metric, x), sweep_labels(store, runs, keys) -> comparing them
    plan_evaluations(budget, sample_seconds, ...) -> EvaluationPlan: what a time budget's evaluations take (and
    evaluation_share_rules() in words)
"""
from __future__ import annotations

import threading
import typing
from importlib import import_module

# What the studio needs to build its page is imported now, and needs no torch: families, choices, names.
from .archives import (
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    ArchiveError,
    copy_member,
    unpack_limit,
)
from .archives import check_members as check_archive_members
from .config import SAMPLER_NAMES
from .data import BUILTIN, check_dataset
from .data.lr_options import DEGRADATIONS, RESIZE_METHODS
from .data.progress import describe as describe_preparation
from .data.transforms import IMAGE_SUFFIXES
from .ecosystem.hub import HubError, is_repo_id, local_folder, push_model
from .ecosystem.notify import run_ended as notify_run_ended
from .ecosystem.portable import PortableError, export_run, import_run
from .families import FAMILIES, Chart, FamilySpec, Form, family_of
from .families import names as families_of_kind
from .metrics import metric_label, smooth
from .metrics.budget import EvaluationPlan, plan_evaluations
from .metrics.budget import share_rules as evaluation_share_rules
from .sample.checks import UpscaleError, check_tiling
from .sample.images import (
    labelled_rows,
    make_grid,
    pil_images,
    save_gif,
    save_mp4,
    upscale_for_display,
)
from .sample.request import Cancelled, SampleRequest
from .sweep import MAX_FIELDS as MAX_SWEEP_FIELDS
from .sweep import parse_specs as parse_sweep
from .sweep import plan_sweep, queue_sweep, sweep_curves, sweep_table
from .sweep import run_labels as sweep_labels

SAMPLERS = typing.get_args(SAMPLER_NAMES)  # their names; the diffusers schedulers are in sample/diffusion.py


# One first import at a time. diffusers' lazy modules import each other in cycles; two threads importing them at once
# can each be handed the other's half-initialised module ("cannot import name 'UNet2DModel' from 'diffusers'", seen
# when Compare was pressed while the list beside it was asking which samplers apply, on a loaded machine).
_IMPORTING = threading.RLock()


def _deferred(target: str):
    """The engine function `module:name`, imported when first called: torch and diffusers load after the studio's
    page is served, not before."""
    module, name = target.split(":")

    def call(*args, **kwargs):
        with _IMPORTING:
            function = getattr(import_module(module, __package__), name)
        return function(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"pipelines{module}.{name}, imported when first called."
    return call


# Trackers, model cards, the Hub, portable runs
read_card = _deferred(".ecosystem.cards:read_card")
check_trackers = _deferred(".ecosystem.trackers:check_trackers")
tracker_locations = _deferred(".ecosystem.trackers:tracker_locations")

# Runs
list_checkpoints = _deferred(".checkpoints:list_checkpoints")
run_checkpoints = _deferred(".checkpoints:run_checkpoints")
prepare_run = _deferred(".train.run:prepare_run")
train = _deferred(".train.run:train")
check_extractor = _deferred(".metrics.extractors:check_extractor")

# Data
dataset_preview = _deferred(".data.preview:dataset_preview")
propose_data = _deferred(".data.propose:propose_for")
plan_pairs = _deferred(".data.pairs:plan_pairs")
prepare_pairs = _deferred(".data.pairs:prepare_pairs")

# Models and sampling
load = _deferred(".sample.models:load_model")
samplers_of_folder = _deferred(".objectives:samplers_of_folder")
sample = _deferred(".sample.models:sample_model")
interpolate = _deferred(".sample.models:interpolate_model")
interpolate_prompts = _deferred(".sample.models:interpolate_prompts_model")
compare = _deferred(".sample.compare:compare_checkpoints")
compare_samplers = _deferred(".sample.compare:compare_samplers")
comparison_grid = _deferred(".sample.compare:comparison_grid")
chain = _deferred(".sample.chain:chain")
save_chain = _deferred(".sample.chain:save_chain")
load_upscaler = _deferred(".sample.upscale_images:load_upscaler")
upscale_image = _deferred(".sample.upscale_images:upscale_image")
bicubic = _deferred(".sample.upscale_images:bicubic")
open_checked = _deferred(".sample.upscale_images:open_checked")

__all__ = [
    "BUILTIN",
    "DEGRADATIONS",
    "FAMILIES",
    "IMAGE_SUFFIXES",
    "MAX_MEMBERS",
    "MAX_SWEEP_FIELDS",
    "MAX_UNPACKED_BYTES",
    "RESIZE_METHODS",
    "SAMPLERS",
    "ArchiveError",
    "Cancelled",
    "Chart",
    "EvaluationPlan",
    "FamilySpec",
    "Form",
    "HubError",
    "PortableError",
    "SampleRequest",
    "UpscaleError",
    "bicubic",
    "chain",
    "check_archive_members",
    "check_dataset",
    "check_extractor",
    "check_tiling",
    "check_trackers",
    "compare",
    "compare_samplers",
    "comparison_grid",
    "copy_member",
    "dataset_preview",
    "describe_preparation",
    "evaluation_share_rules",
    "export_run",
    "families_of_kind",
    "family_of",
    "import_run",
    "interpolate",
    "interpolate_prompts",
    "is_repo_id",
    "labelled_rows",
    "list_checkpoints",
    "load",
    "load_upscaler",
    "local_folder",
    "make_grid",
    "metric_label",
    "notify_run_ended",
    "open_checked",
    "parse_sweep",
    "pil_images",
    "plan_evaluations",
    "plan_pairs",
    "plan_sweep",
    "prepare_pairs",
    "prepare_run",
    "propose_data",
    "push_model",
    "queue_sweep",
    "read_card",
    "run_checkpoints",
    "sample",
    "samplers_of_folder",
    "save_chain",
    "save_gif",
    "save_mp4",
    "smooth",
    "sweep_curves",
    "sweep_labels",
    "sweep_table",
    "tracker_locations",
    "train",
    "unpack_limit",
    "upscale_for_display",
    "upscale_image",
]
