"""Every CUDA-only path for a few steps, with a table of what ran and how fast. Without CUDA it says so and exits 0.

    python bench/gpu_smoke.py [--workspace DIR] [--only NAME ...]

The paths: fp16 autocast with the grad scaler, bf16 autocast, torch.compile, batch-size probing that meets a real
out-of-memory error, pinned-memory prefetch of batches, each family's training (DDPM, class-conditional DDPM,
GAN, super-resolution, text-to-image), sampling from each saved model, and tiled upscaling. Tiny models: the
whole check takes a few minutes on any GPU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TINY = {
    "ddpm": {"family": "ddpm", "data": {"dataset": "digits", "image_size": 16, "channels": 1, "num_samples": 512},
             "model": {"base_channels": 32, "channel_mults": [1, 2], "attention_resolutions": [8]}},
    "gan": {"family": "gan", "data": {"dataset": "digits", "image_size": 16, "channels": 1, "num_samples": 512},
            "model": {"z_dim": 32, "g_channels": 16, "d_channels": 16, "attention_resolutions": [8]}, "gan": {"warmup_epochs": 1}},
    "sr": {"family": "sr", "data": {"dataset": "photos", "image_size": 128}, "model": {"size": "ultra_lite", "scale": 4},
           "sr": {"patch_size": 64, "patches_per_epoch": 256}},
    "t2i": {"family": "t2i", "data": {"dataset": "shapes", "image_size": 16, "synthetic_count": 512},
            "model": {"base_channels": 32, "channel_mults": [1, 2], "cross_attention_resolutions": [8], "attention_heads": 2}},
}
COMMON = {"training": {"epochs": 2, "batch_size": 32, "checkpoint_every_epochs": 2, "sample_every_epochs": 2,
                       "num_sample_images": 4, "sample_steps": 4, "log_every_steps": 1, "auto_batch_size": False,
                       "compile": "off", "mixed_precision": "no"},
          "evaluation": {"every_epochs": 0}}


def config(family: str, **sections):
    from pipelines.config import validate_config

    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY[family].items()}
    for section, values in [*COMMON.items(), *sections.items()]:
        raw.setdefault(section, {}).update(values)
    if family != "gan":  # (a GAN has no warm-up)
        raw["training"].setdefault("warmup_steps", 2)
    if family in ("ddpm", "gan"):  # no final FID of best/: the samples' own check is enough here
        raw["evaluation"].setdefault("final", False)
    return validate_config(raw)


def train_case(workspace: Path, name: str, family: str, **sections) -> str:
    from pipelines.api import train
    from pipelines.store import RunStore

    row = train(config(family, **sections), workspace, name=name, progress=False)
    speeds = [m["value"] for m in RunStore(workspace).metrics(name, ["images_per_s"])]
    log = (Path(row["folder"]) / "log.txt").read_text()
    facts = [f"{row['status']} at step {row['step']}"]
    if speeds:
        facts.append(f"{max(speeds):,.0f} images/s")
    for marker in ("mixed precision", "auto batch size"):
        facts += [line.split(" INFO ")[-1] for line in log.splitlines() if marker in line][:1]
    if row["status"] != "completed":
        raise RuntimeError(f"{name} ended {row['status']}: {row['error']}")
    return "; ".join(facts)


def sample_case(workspace: Path, name: str, **request) -> str:
    from pipelines.api import load, sample

    model = load(workspace / name / "final", "cuda")
    start = time.perf_counter()
    images = sample(model, num=16, seed=0, **request)
    torch.cuda.synchronize()
    if images.std() < 1:
        raise RuntimeError(f"{name}: the samples are blank")
    return f"16 images {images.shape[1]}x{images.shape[2]} in {time.perf_counter() - start:.2f} s"


def oom_probe(workspace: Path) -> str:
    """A batch far beyond any GPU's memory: the probe must meet a real out-of-memory error and shrink."""
    return train_case(workspace, "probe", "ddpm", data={"dataset": "photos", "image_size": 128, "channels": 3,
                                                          "synthetic_count": 4096, "num_samples": None},
                      model={"base_channels": 128, "channel_mults": [1, 2, 2], "attention_resolutions": [32]},
                      training={"batch_size": 4096, "auto_batch_size": True, "epochs": 1, "max_minutes": 1})


def prefetch_case(workspace: Path) -> str:
    from pipelines.data import load_splits
    from pipelines.data.prefetch import prefetch

    data = load_splits(config("ddpm").data, workspace).train
    batches = (data.batch(torch.arange(i, i + 64)) for i in range(0, len(data) - 64, 64))
    start, n = time.perf_counter(), 0
    for batch in prefetch(batches):
        if not batch["images"].is_pinned():
            raise RuntimeError("a prefetched batch is not in pinned memory")
        batch["images"].to("cuda", non_blocking=True)
        n += len(batch["images"])
    torch.cuda.synchronize()
    return f"{n} images pinned and copied, {n / (time.perf_counter() - start):,.0f} images/s"


def upscale_case(workspace: Path) -> str:
    from PIL import Image
    from skimage.data import astronaut

    from pipelines.api import load_upscaler, upscale_image

    upscaler = load_upscaler(workspace / "sr" / "final", "cuda")
    image = Image.fromarray(astronaut()[:200, :300])
    start = time.perf_counter()
    out = upscale_image(upscaler, image, tile=64, tile_pad=8)
    torch.cuda.synchronize()
    return f"{image.size} -> {out.size} in tiles of 64 in {time.perf_counter() - start:.2f} s"


def cases(ws: Path) -> list[tuple[str, callable]]:
    bf16 = torch.cuda.is_bf16_supported()
    return [
        ("ddpm fp16 + grad scaler", lambda: train_case(ws, "ddpm", "ddpm", training={"mixed_precision": "fp16"})),
        ("ddpm bf16", (lambda: train_case(ws, "ddpm_bf16", "ddpm", training={"mixed_precision": "bf16"})) if bf16 else None),
        ("ddpm torch.compile", lambda: train_case(ws, "ddpm_compiled", "ddpm", training={"compile": "on"})),
        ("ddpm class-conditional, auto precision", lambda: train_case(
            ws, "ddpm_cond", "ddpm", model={"class_conditional": True}, training={"mixed_precision": "auto"})),
        ("batch-size probe (real OOM)", lambda: oom_probe(ws)),
        ("pinned-memory prefetch", lambda: prefetch_case(ws)),
        ("gan fp16", lambda: train_case(ws, "gan", "gan", training={"mixed_precision": "fp16"})),
        ("sr fp16", lambda: train_case(ws, "sr", "sr", training={"mixed_precision": "fp16"})),
        ("t2i auto precision + compile", lambda: train_case(ws, "t2i", "t2i", training={"mixed_precision": "auto", "compile": "on"})),
        ("sample ddpm (dpm++)", lambda: sample_case(ws, "ddpm", sampler="dpm++", steps=10)),
        ("sample ddpm class 3, guidance 2", lambda: sample_case(ws, "ddpm_cond", steps=10, class_label=3, guidance=2.0)),
        ("sample gan", lambda: sample_case(ws, "gan")),
        ("sample t2i", lambda: sample_case(ws, "t2i", steps=10, prompt="a red circle on a blue background", guidance=3.0)),
        ("tiled upscaling", lambda: upscale_case(ws)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--only", nargs="*", help="run the cases whose name contains one of these words")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (the CPU paths are covered by the tests)")
        return 0
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="gpu-smoke-"))
    rows, failed, begin = [], 0, time.perf_counter()
    for name, run in cases(ws):
        if args.only and not any(word in name for word in args.only):
            continue
        if run is None:
            rows.append((name, "skipped", "-", "this GPU has no bf16"))
            continue
        start = time.perf_counter()
        try:
            outcome, facts = "ok", run()
        except Exception as exc:  # noqa: BLE001  one broken path must not hide the others
            outcome, facts, failed = "FAILED", f"{type(exc).__name__}: {exc}", failed + 1
            traceback.print_exc()
        rows.append((name, outcome, f"{time.perf_counter() - start:.1f} s", facts))
        torch.cuda.empty_cache()
    width = max(len(r[0]) for r in rows)
    print(f"\n{'path':{width}}  result   time     what it did")
    for name, outcome, seconds, facts in rows:
        print(f"{name:{width}}  {outcome:7}  {seconds:>7}  {facts}")
    print(f"\n{len(rows) - failed} of {len(rows)} paths ran in {time.perf_counter() - begin:.0f} s; runs in {ws}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
