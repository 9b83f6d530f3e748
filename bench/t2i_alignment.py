"""Text-to-image prompt alignment after a CPU budget, on seen and on held-out colour-shape combinations.

    python bench/t2i_alignment.py [--minutes 30] [--num 384] [--config configs/t2i_shapes32.yaml]

Trains the default recipe (shapes 32x32, pixel space, MiniLM, three combinations held out) for the budget,
then draws `--num` images from prompts over every seen combination and `--num` over the held-out ones with
final/ (EMA weights, DPM-Solver++ 20 steps, the preset's guidance), and reads them back with the checker
(colour, shape and background all right). Target after 30 CPU-minutes: at least 90% on seen and 75% on
held-out combinations.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.config import load_config  # noqa: E402
from pipelines.metrics.alignment import alignment  # noqa: E402
from pipelines.sample.models import load_model, sample_model  # noqa: E402
from pipelines.train.run import train  # noqa: E402
from pipelines.families.t2i.alignment import combination_prompts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def score(model, prompts: list[str], num: int, guidance: float) -> dict[str, float]:
    chosen = [prompts[i % len(prompts)] for i in range(num)]
    images = np.concatenate([sample_model(model, "dpm++", 20, 1, 50_000 + i, guidance=guidance, prompt=p)
                             for i, p in enumerate(chosen)])
    return alignment(images, chosen)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget")
    parser.add_argument("--num", type=int, default=384, help="images per set of combinations")
    parser.add_argument("--config", default=str(ROOT / "configs" / "t2i_shapes32.yaml"))
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="t2i-alignment-"))
    config = load_config(args.config, [f"training.max_minutes={args.minutes}", "name=t2i_alignment"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {config.data.image_size}px, held out: "
          f"{', '.join(config.data.holdout)}; {args.minutes:g} minutes; workspace {workspace}", flush=True)
    start = time.perf_counter()
    row = train(config, workspace, progress=False)
    print(f"trained {row['step']} steps ({row['epoch']} epochs) in {time.perf_counter() - start:.0f} s", flush=True)
    model = load_model(Path(row["folder"]) / "final")
    seen, unseen = combination_prompts(config.data.holdout)
    g = config.sampling.guidance
    for name, prompts, target in (("seen", seen, 0.90), ("held-out", unseen, 0.75)):
        s = score(model, prompts, args.num, g)
        print(f"{name:8s} ({len(prompts)} combinations, {args.num} images, guidance {g:g}): all three right {s['all']:.1%} "
              f"(colour {s['colour']:.1%}, shape {s['shape']:.1%}, background {s['background']:.1%}); "
              f"target {target:.0%}: {'meets' if s['all'] >= target else 'MISSES'}", flush=True)


if __name__ == "__main__":
    main()
