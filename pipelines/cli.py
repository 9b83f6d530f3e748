"""python -m pipelines train|sample|evaluate|upscale|degrade ... (see README for the reference)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ddpm_digits16.yaml"


def build_parser() -> argparse.ArgumentParser:
    from typing import get_args

    from .config import EXTRACTOR_NAMES, SAMPLER_NAMES

    samplers = list(get_args(SAMPLER_NAMES))
    parser = argparse.ArgumentParser(prog="python -m pipelines", description="Train and sample small generative image models.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a new run, or resume one")
    t.add_argument("--config", help=f"YAML config (default {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parent.parent)})")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=5 (repeatable)")
    t.add_argument("--workspace", default="checkpoints", help="folder of runs and the run store (default checkpoints)")
    t.add_argument("--name", help="run name (default <dataset>_<size>x<size>, with a suffix when taken)")
    t.add_argument("--resume", metavar="PATH", help="a run folder (its newest checkpoint) or a checkpoint-<step> folder")
    t.add_argument("--run-name", help="train a run already created in the workspace but not started (the studio's queue)")
    t.add_argument("--no-amp", action="store_true", help="train in full precision (same as --set training.mixed_precision=no)")
    t.add_argument("--no-compile", action="store_true", help="do not torch.compile (same as --set training.compile=off)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                   help="train a grid of runs over this field's values, e.g. --sweep training.learning_rate=5e-5,1e-4,2e-4 "
                        "(repeatable, up to 3 fields; values are YAML scalars)")
    t.add_argument("--sweep-sample", type=int, metavar="N", help="train N combinations of the grid drawn at random")
    t.add_argument("--sweep-seed", type=int, default=0, help="seed of --sweep-sample (default 0)")
    t.add_argument("--sweep-name", help="name of the sweep in the run store (default <family>-<dataset>-<size>-sweep)")

    s = sub.add_parser("sample", help="generate images from a checkpoint folder")
    s.add_argument("--checkpoint", help="a run's checkpoint-<step>/, best/ or final/ folder (diffusion or GAN), or a diffusers folder")
    s.add_argument("--sampler", default="dpm++", choices=samplers)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--num", type=int, default=16)
    s.add_argument("--seed", type=int, default=0, help="image i uses seed SEED+i")
    s.add_argument("--class", dest="class_label", type=int, help="class index for a class-conditional model")
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = none; default 3 with --prompt, else 1)")
    s.add_argument("--prompt", help="text-to-image: what to draw, e.g. 'a red circle on a blue background'")
    s.add_argument("--negative-prompt", default="", help="text-to-image: what to steer away from")
    s.add_argument("--truncation", type=float, help="GAN: redraw z values beyond +-T (e.g. 1.0: less variety, more typical images)")
    s.add_argument("--out", required=True, help="*.png: a grid; *.npy: N x H x W x C uint8; otherwise a folder of PNGs")
    s.add_argument("--interpolate", action="store_true",
                   help="frames between --seed and --seed-b, or with --prompt-b between two prompts (writes OUT strip and a GIF)")
    s.add_argument("--seed-b", type=int, help="second seed of --interpolate (default SEED+1)")
    s.add_argument("--prompt-b", help="text-to-image --interpolate: the prompt to walk to from --prompt (fixed noise)")
    s.add_argument("--mp4", action="store_true", help="--interpolate: an MP4 as well as the GIF")
    s.add_argument("--frames", type=int, default=8, help="frames of --interpolate")
    s.add_argument("--compare", nargs="+", metavar="CHECKPOINT", help="the same seeds from several checkpoints, one column each")
    s.add_argument("--display", type=int, default=64, help="pixel size each image is shown at in --compare and --interpolate")
    d = sub.add_parser("data", help="preview a dataset as training will see it, and prepare it into the workspace's cache")
    d.add_argument("--dataset", help="built-in name, image folder or Hugging Face dataset id (default: the config's)")
    d.add_argument("--config", help="YAML config whose data section to use (default: the default config)")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.image_size=64 (repeatable)")
    d.add_argument("--workspace", default="checkpoints", help="where the prepared-dataset cache lives (default checkpoints)")
    d.add_argument("--no-prepare", action="store_true", help="count from the source only; decode just the grid's images")
    d.add_argument("--grid", metavar="PNG", help="save a grid of the preprocessed images here")
    e = sub.add_parser("evaluate", help="FID/KID of a run's checkpoint on held-out images (printed and stored)")
    e.add_argument("--checkpoint", required=True, help="a run's checkpoint-<step>/, best/ or final/ folder")
    e.add_argument("--split", default="test", choices=["train", "val", "test"], help="real images to compare with (default test)")
    e.add_argument("--num", type=int, default=2000, help="generated images (default 2000)")
    e.add_argument("--extractor", default="auto", choices=get_args(EXTRACTOR_NAMES),
                   help="features (auto: inception where its weights are on the machine, else digits-cnn on digits, photo-cnn on colour photos of 24-64 px, else hog-colour)")
    e.add_argument("--sampler", default="dpm++", choices=samplers)
    e.add_argument("--steps", type=int, default=20)

    u = sub.add_parser("upscale", help="upscale an image or a folder of images with a super-resolution model")
    u.add_argument("--model", required=True, metavar="FILE_OR_RUN",
                   help="a super-resolution run folder, one of its checkpoint folders, a .safetensors, or an official Real-ESRGAN or SwinIR .pth")
    u.add_argument("--input", required=True, metavar="IMAGE_OR_DIR", help="an image, or a folder (recursive; its structure is kept)")
    u.add_argument("--output", required=True, metavar="PATH", help="an image file for one image, else a folder (PNG files)")
    u.add_argument("--outscale", type=float, help="output scale (default: the model's); other scales resize its result with Lanczos")
    u.add_argument("--tile", type=int, default=256, help="tile size in input pixels (0: the whole image at once)")
    u.add_argument("--tile-pad", type=int, default=16, help="context pixels around each tile")
    u.add_argument("--pre-pad", type=int, default=0, help="reflected pixels added at the right and bottom edges")
    u.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    u.add_argument("--quiet", action="store_true", help="no progress bar")

    c = sub.add_parser("chain", help="generate at low resolution, then upscale with a super-resolution model")
    c.add_argument("--checkpoint", required=True, help="the generator: a diffusion, GAN or text-to-image checkpoint folder")
    c.add_argument("--upscaler", required=True, metavar="FILE_OR_RUN", help="a super-resolution run or checkpoint folder, or a model file")
    c.add_argument("--passes", type=int, default=1, choices=[1, 2], help="upscale once or twice (x4 twice is x16)")
    c.add_argument("--num", type=int, default=4)
    c.add_argument("--seed", type=int, default=0, help="image i uses seed SEED+i")
    c.add_argument("--prompt", help="text-to-image generators: what to draw")
    c.add_argument("--negative-prompt", default="")
    c.add_argument("--sampler", default="dpm++", choices=samplers)
    c.add_argument("--steps", type=int, default=20)
    c.add_argument("--guidance", type=float, help="classifier-free guidance (default 3 for text-to-image, else 1)")
    c.add_argument("--class", dest="class_label", type=int, help="class index for a class-conditional generator")
    c.add_argument("--truncation", type=float, help="GAN truncation")
    c.add_argument("--unsharp", type=float, default=0.0, help="unsharp mask strength after upscaling (1.0 = 100%%; 0 off)")
    c.add_argument("--unsharp-radius", type=float, default=2.0, help="unsharp mask radius in output pixels")
    c.add_argument("--gamma", type=float, default=1.0, help="gamma after upscaling (above 1 brightens mid-tones)")
    c.add_argument("--tile", type=int, default=256, help="upscaling tile size in input pixels (0: whole images)")
    c.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    c.add_argument("--out", required=True, help="folder: low/, bicubic/, upscaled/ and comparison.png")

    add_ecosystem_parsers(sub)
    from .data.pairs import add_degrade_arguments

    add_degrade_arguments(sub.add_parser("degrade", help="prepare low-resolution pairs of a folder of HR images for super-resolution"))
    return parser


def add_ecosystem_parsers(sub) -> None:
    p = sub.add_parser("push", help="upload a model folder (best/, final/ ...) to the Hugging Face Hub")
    p.add_argument("--checkpoint", required=True, help="a run's best/, final/ or checkpoint-<step>/ folder")
    p.add_argument("--repo", required=True, metavar="USER/NAME", help="the Hub model repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="a branch to upload to (created if needed; default main)")
    x = sub.add_parser("export", help="write a run (config, log, final/, best/, samples, metrics as CSV) to a zip")
    x.add_argument("run_folder", metavar="RUN_FOLDER", help="the run's folder, e.g. checkpoints/digits_16x16")
    x.add_argument("--out", required=True, help="the zip to write")
    i = sub.add_parser("import", help="add a run exported as a zip to a workspace (never overwrites: a taken name gets a suffix)")
    i.add_argument("zip", metavar="RUN_ZIP")
    i.add_argument("--workspace", default="checkpoints", help="folder of runs and the run store (default checkpoints)")


def cmd_push(args) -> int:
    from .ecosystem.hub import HubError, push_model

    try:
        url = push_model(args.checkpoint, args.repo, private=args.private, revision=args.revision)
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded {args.checkpoint} to {url}")
    return 0


def cmd_export(args) -> int:
    from .ecosystem.portable import export_run

    out = export_run(args.run_folder, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_import(args) -> int:
    from .ecosystem.portable import import_run

    name = import_run(args.zip, args.workspace)
    print(f"imported run {name} into {Path(args.workspace) / name}")
    return 0


def cmd_train(args) -> int:
    import faulthandler

    from .config import ConfigError, load_config
    from .data import StopRequested, check_dataset
    from .ecosystem.trackers import check_trackers
    from .metrics.extractors import check_extractor
    from .train.run import train

    # A crash in native code (SIGBUS from a dataset cache truncated under the run) prints where it happened.
    try:
        faulthandler.enable()
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor (captured, redirected in-process)
        pass

    overrides = list(args.overrides)
    if args.no_amp:
        overrides.append("training.mixed_precision=no")
    if args.no_compile:
        overrides.append("training.compile=off")
    config = None
    if args.sweep or args.sweep_sample:
        return cmd_sweep(args, overrides)
    try:
        if args.resume is None and args.run_name is None:
            config = load_config(args.config or DEFAULT_CONFIG, overrides)
            check_dataset(config.data.dataset)
            check_extractor(config)
            check_trackers(config)
        elif args.config:
            print("--config is ignored with --resume: the run's own config.yaml is used (change it with --set)", file=sys.stderr)
    except (ConfigError, ValueError) as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        row = train(config, args.workspace, name=args.name, resume=args.resume,
                    overrides=overrides if args.resume else None, stop_event=stop, progress=not args.quiet,
                    run_name=args.run_name)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StopRequested as exc:  # Ctrl-C while the data was prepared: nothing to resume from
        print(f"run stopped: {exc}", file=sys.stderr)
        return 130
    except Exception as exc:  # recorded in the store and log.txt already
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"run {row['name']} {row['status']} at step {row['step']}: {row['folder']}")
    return 0


def cmd_sweep(args, overrides: list[str]) -> int:
    """A grid of runs: every config is checked before any run is made, then the runs train one after another in this
    process (Ctrl-C stops the current one; the rest stay unstarted, marked stopped, and resume like any run)."""
    from .config import ConfigError, load_config
    from .data import check_dataset
    from .ecosystem.trackers import check_trackers
    from .metrics.extractors import check_extractor
    from .store import RunStore
    from .sweep import parse_specs, plan_sweep, queue_sweep, sweep_table

    if args.resume or args.run_name or args.name:
        print("error: --sweep names its own runs and starts new ones: it does not go with --name, --resume or --run-name",
              file=sys.stderr)
        return 2
    try:
        if not args.sweep:
            raise ConfigError([("--sweep-sample", "needs --sweep key=v1,v2")])
        plans = plan_sweep(load_config(args.config or DEFAULT_CONFIG, overrides), parse_specs(args.sweep),
                           args.sweep_sample, args.sweep_seed)
        for plan in plans:
            check_dataset(plan.config.data.dataset)
            check_extractor(plan.config)
            check_trackers(plan.config)
    except (ConfigError, ValueError) as exc:
        print(f"config error (nothing was queued):\n{exc}", file=sys.stderr)
        return 2
    from .train.run import prepare_run

    store = RunStore(args.workspace)
    sweep, runs = queue_sweep(store, plans, lambda config: prepare_run(config, args.workspace)[0], args.sweep_name)
    print(f"sweep {sweep}: {len(runs)} runs queued: {', '.join(runs)}")
    failed = 0
    for i, name in enumerate(runs):
        if store.get_run(name)["status"] != "queued":  # stopped meanwhile (from the app, say)
            continue
        print(f"[{i + 1}/{len(runs)}] {name}")
        code = cmd_train(argparse.Namespace(**{**vars(args), "sweep": [], "sweep_sample": None, "run_name": name,
                                               "config": None, "overrides": []}))
        failed += code != 0
        if code == 130 or store.get_run(name)["status"] == "stopped":  # a person stopped it: stop the sweep
            for rest in runs[i + 1:]:
                store.transition(rest, ("queued",), "stopped", error="the sweep was stopped before this run started")
            print(f"sweep {sweep} stopped; resume its runs one by one (python -m pipelines train --resume ...)", file=sys.stderr)
            return 130
    table = sweep_table(store, runs, list(plans[0].values))
    print(f"\nsweep {sweep}" + (f" ({table.metric})" if table.metric else ""))
    print(format_table(table.columns, table.rows))
    if table.best:
        print(f"best run: {table.best} ({store.get_run(table.best)['folder']})")
    return 1 if failed else 0


def format_table(columns: list[str], rows: list[list]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in [columns, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def request_of(args, checkpoint=None):
    """The SampleRequest of the sample and chain commands' flags (guidance: 3 for a model that takes prompts, else 1)."""
    from .families import family_of
    from .sample.request import SampleRequest

    guidance = args.guidance
    if guidance is None:
        spec = family_of(checkpoint) if checkpoint and Path(checkpoint).is_dir() else None
        guidance = 3.0 if args.prompt or (spec is not None and spec.kind == "text") else 1.0
    return SampleRequest.of(sampler=getattr(args, "sampler", None), steps=args.steps, num=args.num, seed=args.seed,
                            class_label=args.class_label, guidance=guidance, truncation=args.truncation,
                            prompt=args.prompt, negative_prompt=args.negative_prompt)


def cmd_sample(args) -> int:
    from .sample.compare import compare_checkpoints, comparison_grid
    from .sample.images import labelled_rows, save_gif, save_mp4, save_output
    from .sample.models import (
        interpolate_model,
        interpolate_prompts_model,
        load_model,
        sample_model,
    )

    start = time.perf_counter()
    if args.compare:
        columns = compare_checkpoints(args.compare, request_of(args))
        grid = comparison_grid(columns, max(args.display, *(c.image_size for c in columns)))
        out = save_output(grid[None], args.out) if Path(args.out).suffix == ".npy" else _save_png(grid, args.out)
    elif not args.checkpoint:
        print("error: --checkpoint is required (or --compare A B ...)", file=sys.stderr)
        return 2
    elif args.interpolate:
        model = load_model(args.checkpoint)
        request = request_of(args, args.checkpoint).but(steps=max(args.steps, 1))
        if args.prompt_b:
            frames = interpolate_prompts_model(model, request, args.prompt_b, args.frames)
            label = f"{args.prompt} -> {args.prompt_b}"
        else:
            seed_b = args.seed + 1 if args.seed_b is None else args.seed_b
            frames = interpolate_model(model, request, seed_b, args.frames)
            label = f"seed {args.seed} -> {seed_b}"
        out = _save_png(labelled_rows([(label, frames)], args.display), Path(args.out).with_suffix(".png"))
        print(f"wrote {save_gif(frames, Path(args.out).with_suffix('.gif'), display=max(args.display, 128))}")
        if args.mp4:
            print(f"wrote {save_mp4(frames, Path(args.out).with_suffix('.mp4'), display=max(args.display, 256))}")
    else:
        model = load_model(args.checkpoint)
        out = save_output(sample_model(model, request_of(args, args.checkpoint)), args.out)
    print(f"wrote {out} in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_data(args) -> int:
    import numpy as np

    from .config import load_config
    from .data.preview import dataset_preview
    from .data.progress import PreparationBar

    overrides = list(args.overrides) + ([f"data.dataset={args.dataset}"] if args.dataset else [])
    config = load_config(args.config or DEFAULT_CONFIG, overrides)
    preview = dataset_preview(config.data, args.workspace, prepare=not args.no_prepare, progress=PreparationBar())
    print(preview.text())
    if args.grid and preview.grid:
        from .sample.images import save_grid

        print(f"grid of {len(preview.grid)} preprocessed images: {save_grid(np.stack(preview.grid), args.grid)}")
    return 0


def cmd_evaluate(args) -> int:
    from .metrics.evaluate import evaluate_checkpoint

    if args.num < 2:
        print("error: --num must be at least 2", file=sys.stderr)
        return 2
    result = evaluate_checkpoint(args.checkpoint, args.split, args.num, args.extractor, args.sampler, args.steps, progress=True)
    print(result.summary())
    return 0


def cmd_upscale(args) -> int:
    import torch

    from .sample.checks import check_tiling
    from .sample.upscale_images import load_upscaler, upscale_path

    if args.outscale is not None and args.outscale <= 0:  # 0 means the model's scale to the engine
        print(f"error: outscale: must be above 0, got {args.outscale:g}", file=sys.stderr)
        return 2
    check_tiling(args.tile, args.tile_pad, args.pre_pad, args.outscale)  # before the model is loaded
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    upscaler = load_upscaler(args.model, device, half=device.startswith("cuda"))
    print(f"model: {upscaler.label}")
    report = upscale_path(upscaler, args.input, args.output, args.outscale, args.tile, args.tile_pad, args.pre_pad,
                          progress=not args.quiet)
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    where = report.written[0] if len(report.written) == 1 else args.output
    print(f"wrote {len(report.written)} image(s) to {where} in {report.seconds:.1f}s; {len(report.failed)} skipped")
    return 0 if report.written or not report.failed else 1


def cmd_chain(args) -> int:
    import torch

    from .sample.chain import chain, save_chain

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    result = chain(args.checkpoint, args.upscaler, request_of(args, args.checkpoint), args.passes, args.unsharp,
                   args.unsharp_radius, args.gamma, args.tile, device=device)
    out = save_chain(result, args.out)
    low, high = result.low[0], result.upscaled[0]
    print(f"{result.generator} -> {result.upscaler}: {len(result.low)} images {low.width}x{low.height} -> "
          f"{high.width}x{high.height}; " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    print(f"wrote {out.parent}")
    return 0


def cmd_degrade(args) -> int:
    from .data.pairs import run_degrade

    return run_degrade(args)


def _save_png(image, path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "upscale": cmd_upscale,
                    "chain": cmd_chain, "degrade": cmd_degrade, "data": cmd_data, "push": cmd_push,
                    "export": cmd_export, "import": cmd_import}
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
