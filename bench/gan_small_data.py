"""GAN on a small dataset with and without differentiable augmentation, same seeds and CPU budget.

    python bench/gan_small_data.py [--minutes 5] [--num 1000]

Trains configs/gan_faces32.yaml (the 200-image faces set) twice, `gan.augment` on and off, each for the same
wall-clock budget, then prints FD of the EMA generators against the training images and the held-out test
images. Expected: augmentation clearly better (a discriminator without it memorises 180 images).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.config import load_config  # noqa: E402
from pipelines.data import load_splits  # noqa: E402
from pipelines.metrics.evaluate import Scorer, checkpoint_sampler  # noqa: E402
from pipelines.train.run import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each run")
    parser.add_argument("--num", type=int, default=1000, help="generated images per FD")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="gan-small-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; faces 32x32, {args.minutes:g} minutes each")
    results = {}
    for augment in (False, True):
        overrides = [f"gan.augment={str(augment).lower()}", f"training.max_minutes={args.minutes}",
                     "evaluation.every_epochs=0", f"name=faces_{'aug' if augment else 'plain'}"]
        config = load_config(ROOT / "configs" / "gan_faces32.yaml", overrides)
        start = time.perf_counter()
        row = train(config, workspace, progress=False)
        final = Path(row["folder"]) / "final"
        sample = checkpoint_sampler(final, "dpm++", 20, "cpu")
        scores, splits = {}, load_splits(config.data)
        for split in ("train", "test"):
            scorer = Scorer(config.data.dataset, getattr(splits, split).images, split, "auto", workspace / "cache")
            scores[split] = scorer.score(sample, args.num)
        results[augment] = scores
        print(f"augment {'on ' if augment else 'off'}: {row['epoch']} epochs in {time.perf_counter() - start:.0f} s; "
              + "; ".join(f"{s.label} vs {split} ({s.num_real} images) {s.fd:.4f}, KID {s.kid:.4f}"
                          for split, s in scores.items()), flush=True)
    for split in ("train", "test"):
        off, on = results[False][split].fd, results[True][split].fd
        print(f"{split}: augmentation {'better' if on < off else 'NOT better'} ({on:.4f} vs {off:.4f}, {off / on:.2f}x)")


if __name__ == "__main__":
    main()
