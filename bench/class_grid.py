"""A class-conditional diffusion checkpoint's samples, a class a column under its name (the README's CIFAR-10 figure).

    python bench/class_grid.py CHECKPOINT OUT.png [--sampler heun] [--steps 8] [--guidance 3] [--rows 8] [--title T]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.checkpoints import read_meta
from pipelines.families.ddpm.model import generate, load_diffusion
from pipelines.sample.images import save_grid

SHORT = {"airplane": "plane", "automobile": "car"}  # CIFAR-10's two long names, so the headers stay large


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a run's best/, final/ or checkpoint-<step>/ folder")
    p.add_argument("out")
    p.add_argument("--sampler", default="heun")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--title")
    args = p.parse_args()
    names = read_meta(args.checkpoint).get("class_names") or []
    if not names:
        p.error(f"{args.checkpoint} is not class-conditional (its studio.json names no classes)")
    model = load_diffusion(args.checkpoint)
    # Without a class, generate() cycles through the classes: image i is of class i mod the number of classes.
    images = generate(model, args.sampler, args.steps, num=len(names) * args.rows, seed=0, guidance=args.guidance)
    print(f"wrote {save_grid(images, args.out, ncols=len(names), min_cell=96, headers=[SHORT.get(n, n) for n in names], title=args.title)}")


if __name__ == "__main__":
    main()
