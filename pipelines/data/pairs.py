"""Super-resolution pairs from a folder of high-resolution images (`python -m pipelines degrade`).

For every input image and scale s it writes OUTPUT/scale_<s>x/<category>/<stem>_lr_<s>x.png (the low-resolution
image) and <stem>_upsampled_<s>x.png (that image resized back, a baseline). The HR image is not stored: training
rebuilds it from the input file with `prepare_hr` and `crop_to_multiple`. Re-runs skip finished pairs and give
identical files; unusable inputs are listed in processing_stats.json, never fatal.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .degrade import KINDS, METHODS, crop_to_multiple, degrade, image_seed, resize_array
from .transforms import IMAGE_SUFFIXES, BadImage, open_image, preprocess

STATS_FILE = "processing_stats.json"
HR_RESIZE = "lanczos"


def pixel_settings(settings: dict) -> dict:
    """The settings that decide the pixels of a pair (the Pillow method only matters to bicubic, the seed to realesrgan)."""
    keys = ["size", "degradation", "hr_resize", "method" if settings.get("degradation") == "bicubic" else "seed"]
    return {k: settings.get(k) for k in keys}


def prepare_hr(img: Image.Image, size: int) -> np.ndarray:
    """The HR image of a pair: centre square resized to size x size, RGB uint8. The one definition, shared with training."""
    return preprocess(img, size, 3, HR_RESIZE, center_crop=True)


def lr_paths(output: Path, relative: Path, scale: int) -> tuple[Path, Path]:
    """(LR png, upsampled png) of the input image at `relative` (its folders are the category)."""
    folder = Path(output) / f"scale_{scale}x" / Path(relative).parent
    stem = Path(relative).stem
    return folder / f"{stem}_lr_{scale}x.png", folder / f"{stem}_upsampled_{scale}x.png"


@dataclass
class Plan:
    input: Path
    output: Path
    scales: list[int]
    size: int
    method: str
    degradation: str
    sample: float
    seed: int
    files: list[Path]  # every image found, relative to input
    chosen: list[Path]  # the --sample subset, relative to input
    done_jobs: int = 0  # (file, scale) pairs whose two outputs exist
    todo_jobs: int = 0
    clashes: dict[str, str] = field(default_factory=dict)  # file -> the file whose outputs it would overwrite
    earlier_scales: list[int] = field(default_factory=list)  # made by earlier runs into the same output

    def settings(self) -> dict:
        """What the output folder holds; its scales include those of earlier runs (training reads them)."""
        scales = sorted(set(self.scales) | set(self.earlier_scales))
        return {"input": str(self.input), "output": str(self.output), "scales": scales, "size": self.size,
                "method": self.method, "degradation": self.degradation, "sample": self.sample, "seed": self.seed,
                "hr_resize": HR_RESIZE}

    def describe(self) -> str:
        lines = [f"Input:  {self.input} ({len(self.files)} images found"
                 + (f", {len(self.chosen)} chosen with --sample {self.sample})" if len(self.chosen) < len(self.files) else ")"),
                 f"Output: {self.output}",
                 f"Degradation: {self.degradation}" + (f" (Pillow {self.method} resize)" if self.degradation == "bicubic" else ""),
                 f"Scales: {', '.join(f'x{s}' for s in self.scales)}"]
        for s in self.scales:
            hr = self.size // s * s
            cropped = f" (cropped to {hr})" if hr != self.size else ""
            lines.append(f"  {self.size} px HR{cropped} -> {hr // s} px LR at x{s}")
        lines.append(f"Jobs (file x scale): {self.todo_jobs} to do, {self.done_jobs} already done")
        if self.clashes:
            lines.append(f"Warning: {len(self.clashes)} file(s) share a name with another image of their folder and will be skipped")
        return "\n".join(lines)


def _check_settings(scales, size, method, degradation, sample) -> None:
    if not scales or any(not 2 <= s <= 8 for s in scales):
        raise ValueError(f"--scales: each scale must be between 2 and 8 (got {' '.join(map(str, scales)) or 'none'})")
    if size < 16 or size < 4 * max(scales):
        raise ValueError(f"--size: must be at least 16 and at least 4 x the largest scale ({4 * max(scales)}), got {size}")
    if method not in METHODS:
        raise ValueError(f"--method: unknown value {method!r} (choose from {', '.join(METHODS)})")
    if degradation not in KINDS:
        raise ValueError(f"--degradation: unknown value {degradation!r} (choose from {', '.join(KINDS)})")
    if not 0 < sample <= 1:
        raise ValueError(f"--sample: must be in (0, 1], got {sample}")


def find_images(input_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Images under input_dir (relative paths, sorted); hidden files and folders and the `exclude` folder left out."""
    found = []
    for path in input_dir.rglob("*"):
        rel = path.relative_to(input_dir)
        if path.suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        if exclude is None or not path.resolve().is_relative_to(exclude):
            found.append(rel)
    return sorted(found)


def _job_done(output: Path, rel: Path, scale: int) -> bool:
    return all(p.is_file() for p in lr_paths(output, rel, scale))


def plan_pairs(input, output, scales, size, method, degradation, sample, seed=0) -> Plan:
    input_dir, output_dir = Path(input).expanduser().resolve(), Path(output).expanduser().resolve()
    scales = sorted(set(int(s) for s in scales))
    _check_settings(scales, size, method, degradation, sample)
    if not input_dir.is_dir():
        raise ValueError(f"--input: folder {input} does not exist")
    if output_dir == input_dir:
        raise ValueError("--output: must not be the --input folder (the pairs would be read as inputs next time)")
    # An output folder inside the input folder holds pngs that must not be taken for inputs.
    files = find_images(input_dir, output_dir if output_dir.is_relative_to(input_dir) else None)
    if not files:
        raise ValueError(f"--input: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {input}")
    chosen = files
    if sample < 1:
        count = max(1, int(round(len(files) * sample)))
        chosen = [files[i] for i in np.sort(np.random.default_rng(seed).permutation(len(files))[:count])]
    owners, clashes = {}, {}
    for rel in chosen:
        key = (rel.parent / rel.stem).as_posix()
        if key in owners:
            clashes[rel.as_posix()] = owners[key]
        else:
            owners[key] = rel.as_posix()
    jobs = [(rel, s) for rel in chosen if rel.as_posix() not in clashes for s in scales]
    plan = Plan(input_dir, output_dir, scales, size, method, degradation, sample, seed, files, chosen, 0, 0, clashes)
    _check_previous_run(plan)
    plan.done_jobs = sum(_job_done(output_dir, rel, s) for rel, s in jobs)
    plan.todo_jobs = len(jobs) - plan.done_jobs
    return plan


def _check_previous_run(plan: Plan) -> None:
    """Finished pairs are skipped, so an output folder made with other settings would end up a mix of both: refuse it."""
    try:
        previous = json.loads((plan.output / STATS_FILE).read_text()).get("settings", {})
    except (OSError, ValueError, AttributeError):
        return
    old, new = pixel_settings(previous), pixel_settings(plan.settings())
    if old == new:
        plan.earlier_scales = [int(s) for s in previous.get("scales", [])]
    elif any(plan.output.glob("scale_*x/**/*.png")):
        keys = dict.fromkeys([*old, *new])
        changes = ", ".join(f"{k} {previous.get(k)} -> {plan.settings()[k]}" for k in keys if previous.get(k) != plan.settings()[k])
        raise ValueError(f"--output: {plan.output} holds pairs made with other settings ({changes}); "
                         "use a new --output folder or delete the old one")


def _write_png(arr: np.ndarray, path: Path) -> None:
    """Write through a temporary name and rename, so a killed run never leaves a half-written png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def process_file(rel: Path, input_dir: Path, output: Path, scales: list[int], size: int, method: str,
                 degradation: str, seed: int) -> dict:
    """Make the missing pairs of one input file: {"file", "status" (processed|done|failed), "reason", "seconds"}."""
    start = time.perf_counter()
    todo = [s for s in scales if not _job_done(output, rel, s)]
    result = {"file": rel.as_posix(), "status": "done", "reason": "", "seconds": 0.0}
    if not todo:
        return result
    try:
        hr_full = prepare_hr(open_image(input_dir / rel), size)
    except (BadImage, OSError, ValueError) as exc:  # decoded but unusable (odd mode...) counts as bad too
        return {**result, "status": "failed", "reason": str(exc) or type(exc).__name__}
    upsample_method = method if degradation == "bicubic" else "cubic"
    for scale in todo:
        hr = crop_to_multiple(hr_full, scale)
        lr = degrade(hr, scale, degradation, method, np.random.default_rng(image_seed(rel.as_posix(), scale, seed)))
        lr_path, up_path = lr_paths(output, rel, scale)
        _write_png(lr, lr_path)
        _write_png(resize_array(lr, hr.shape[0], hr.shape[1], upsample_method), up_path)
    return {**result, "status": "processed", "seconds": time.perf_counter() - start}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already; more threads would only compete


def prepare_pairs(plan: Plan, workers: int = 1, progress: bool = True) -> dict:
    """Run a plan; writes and returns the stats (see processing_stats.json)."""
    if workers < 1:
        raise ValueError(f"--workers: must be at least 1, got {workers}")
    job = partial(process_file, input_dir=plan.input, output=plan.output, scales=plan.scales, size=plan.size,
                  method=plan.method, degradation=plan.degradation, seed=plan.seed)
    files = [rel for rel in plan.chosen if rel.as_posix() not in plan.clashes]
    results = [{"file": f, "status": "failed", "reason": f"same output names as {other}"} for f, other in plan.clashes.items()]
    # The settings go in first, so that even an interrupted run's pairs are recognised by the next plan_pairs.
    _write_stats(plan.output, {"settings": plan.settings(), "finished_at": None})
    bar = tqdm(total=len(files), desc="pairs", unit="file", disable=not progress)
    if workers == 1 or len(files) < 2:
        for rel in files:
            results.append(job(rel))
            bar.update()
    else:
        # "spawn": safe whatever threads the caller runs (fork after torch/OpenMP use can hang).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(files)), mp_context=context, initializer=_init_worker) as pool:
            futures = [pool.submit(job, rel) for rel in files]
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update()
            except BaseException:
                pool.shutdown(cancel_futures=True)  # stop at once rather than finishing the queue
                raise
    bar.close()
    processed = [r for r in results if r["status"] == "processed"]
    failures = sorted(({"file": r["file"], "reason": r["reason"]} for r in results if r["status"] == "failed"),
                      key=lambda f: f["file"])
    stats = {
        "total_processed": len(processed),
        "already_done": sum(r["status"] == "done" for r in results),
        "total_failed": len(failures),
        "failures": failures,
        "avg_processing_time": sum(r["seconds"] for r in processed) / len(processed) if processed else 0.0,
        "settings": plan.settings(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _write_stats(plan.output, stats)
    return stats


def _write_stats(output: Path, stats: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    tmp = output / f".{STATS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(stats, indent=2) + "\n")
    os.replace(tmp, output / STATS_FILE)


def add_degrade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, metavar="DIR", help="folder of HR images (subfolders are categories)")
    parser.add_argument("--output", required=True, metavar="DIR", help="where scale_<s>x/ folders and the stats go")
    parser.add_argument("--scales", nargs="+", type=int, default=[4], metavar="S", help="scale factors 2..8 (default 4)")
    parser.add_argument("--size", type=int, default=512, help="HR side in pixels: centre square, lanczos resize (default 512)")
    parser.add_argument("--method", default="cubic", choices=list(METHODS), help="Pillow resize of bicubic degradation (default cubic)")
    parser.add_argument("--degradation", default="bicubic", choices=list(KINDS), help="plain resize or Real-ESRGAN (default bicubic)")
    parser.add_argument("--sample", type=float, default=1.0, help="fraction of the images to use, chosen with --seed (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample and of the random degradations")
    parser.add_argument("--auto", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_degrade(args: argparse.Namespace, input_fn=input) -> int:
    """The `degrade` command: plan, confirm, run, summarise. 0 when done (even with failed files), 1 cancelled, 2 bad flags."""
    try:
        plan = plan_pairs(args.input, args.output, args.scales, args.size, args.method, args.degradation, args.sample, args.seed)
        if args.workers < 1:
            raise ValueError(f"--workers: must be at least 1, got {args.workers}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plan.describe())
    if not args.auto:
        try:
            answer = input_fn("Proceed? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Cancelled; nothing written.")
            return 1
    stats = prepare_pairs(plan, workers=args.workers, progress=not args.quiet)
    print(f"Processed {stats['total_processed']} files ({stats['already_done']} already done), failed {stats['total_failed']}")
    for failure in stats["failures"][:10]:
        print(f"  {failure['file']}: {failure['reason']}")
    if stats["total_failed"] > 10:
        print(f"  ... and {stats['total_failed'] - 10} more")
    print(f"Average time: {stats['avg_processing_time']:.2f} s per file")
    print(f"Stats: {plan.output / STATS_FILE}")
    return 0
