"""Sampling images/s for DDPM 1000 steps, DDIM 50 and DPM-Solver++ 20 on the default checkpoint.

    python bench/sampling.py [--checkpoint checkpoints/ddpm-digits-16/final] [--num 64]

Without a checkpoint it trains the default config first (about 5 minutes on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.api import load, sample  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.train.run import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--num", type=int, default=64)
    args = parser.parse_args()
    tmp = None
    if args.checkpoint is None:
        tmp = tempfile.TemporaryDirectory()
        row = train(load_config(ROOT / "configs" / "ddpm_digits16.yaml"), tmp.name, progress=False)
        args.checkpoint = Path(row["folder"]) / "final"
    model = load(args.checkpoint)
    print(f"{args.checkpoint}: {model.image_size}x{model.image_size}, {sum(p.numel() for p in model.unet.parameters()) / 1e6:.2f}M parameters, {args.num} images")
    for sampler, steps in (("ddpm", 1000), ("ddim", 50), ("dpm++", 20)):
        start = time.perf_counter()
        images = sample(model, sampler=sampler, steps=steps, num=args.num, seed=0)
        secs = time.perf_counter() - start
        print(f"{sampler:>6} {steps:>4} steps: {args.num / secs:8.1f} images/s ({secs:.1f}s), pixel std {images.std():.1f}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
