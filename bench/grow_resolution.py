"""Growing a run: does training at 32 px and then continuing at 64 px (model.pretrained = the 32 px run's final/)
reach a 64 px FD sooner than training at 64 px from scratch, on the same UNet and the same total training time?

    python bench/grow_resolution.py [--data /tmp/cifar10/train] [--minutes 5] [--num 200] [--images 5000] [--threads 1]

Both arms train the same UNet (no attention, so that the 32 px and the 64 px networks are the same one) from the
same seed on the same images. The grown arm trains `--minutes` at 32 px, then `--minutes` at 64 px from that run's
final/; the scratch arm trains 2 x `--minutes` at 64 px. FD (hog-colour features, or --extractor) of `--num` EMA
samples (DPM-Solver++ 20 steps) at 64 px against the 64 px training images is measured every `--every` seconds of
training time in both arms (evaluations are not counted as training time), and once right after the grown arm
switches to 64 px, before any 64 px step. Prints both curves side by side and the ratio at each point.

Training time is CPU time of this process (`--threads` torch threads): both arms get the same compute on a shared
machine whose other load comes and goes; with one thread every CPU-second counted is work.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.config import validate_config  # noqa: E402
from pipelines.data import load_splits  # noqa: E402
from pipelines.metrics.evaluate import Scorer  # noqa: E402
from pipelines.train.callbacks import Callback  # noqa: E402
from pipelines.train.run import train  # noqa: E402


class Clock(Callback):
    """Scores 64 px samples every `every` seconds of training time (when `scorer` is given) and stops the run when
    its training time reaches `cap`. `offset`: training time spent before this run (the grown arm's 32 px part)."""

    def __init__(self, scorer, num, every, cap, offset=0.0, label=""):
        self.scorer, self.num, self.every, self.cap, self.offset, self.label = scorer, num, every, cap, offset, label
        self.curve, self.paused = [], 0.0

    def on_start(self, trainer):
        self.start = time.process_time()
        self.next = self.every
        if self.scorer is not None and self.offset:
            self.score(trainer, 0.0)  # the grown model at 64 px, before any 64 px step

    def trained(self) -> float:
        return time.process_time() - self.start - self.paused

    def score(self, trainer, trained):
        tick = time.process_time()
        fd = self.scorer.score(lambda n, seed: trainer.family.sample_images(n, seed, sampler="dpm++", steps=20), self.num).fd
        self.paused += time.process_time() - tick
        self.curve.append((self.offset + trained, fd))
        print(f"  {self.label:<8} {self.offset + trained:6.0f} s  epoch {trainer.state.epoch:3d}  step "
              f"{trainer.state.global_step:5d}  FD {fd:.3f}", flush=True)

    def on_step_end(self, trainer, logs):
        trained = self.trained()
        if self.scorer is not None and trained >= self.next:
            self.score(trainer, trained)
            self.next += self.every
        if trained >= self.cap:
            trainer.request_stop("training-time budget")


def config(data: str, size: int, images: int, **model) -> object:
    return validate_config({
        "family": "ddpm", "name": f"grow-{size}",
        "data": {"dataset": data, "image_size": size, "channels": 3, "num_samples": images, "random_flip": True,
                 "val_fraction": 0.0, "test_fraction": 0.0},
        "model": {"base_channels": 32, "channel_mults": [1, 2, 2, 2], "attention_resolutions": [], **model},
        "diffusion": {"beta_schedule": "cosine", "prediction": "v"},
        "training": {"epochs": 10_000, "batch_size": 32, "learning_rate": 5e-4, "warmup_steps": 100, "ema_decay": 0.995,
                     "checkpoint_every_epochs": 10_000, "sample_every_epochs": 10_000, "log_every_steps": 50,
                     "num_sample_images": 4, "sample_steps": 10,
                     "mixed_precision": "no"},
        "evaluation": {"every_epochs": 0, "final": False},
    })


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/cifar10/train", help="a folder of images (CIFAR-10's, unpacked)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training minutes of each part of the grown arm")
    parser.add_argument("--every", type=float, default=150.0, help="seconds of training time between FD points")
    parser.add_argument("--num", type=int, default=200, help="samples per FD (the same everywhere)")
    parser.add_argument("--images", type=int, default=5000, help="training images")
    parser.add_argument("--extractor", default="hog-colour")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    part = args.minutes * 60
    workspace = Path(tempfile.mkdtemp(prefix="grow-"))
    big = config(args.data, 64, args.images)
    scorer = Scorer(args.data, load_splits(big.data, workspace).train, "train", args.extractor, workspace / "cache")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; {args.images} images "
          f"of {args.data}; FD ({scorer.extractor_name}) of {args.num} samples at 64 px vs {len(scorer.real)} training "
          f"images; DPM-Solver++ 20 steps, EMA weights")

    print(f"grown: {args.minutes:g} min at 32 px, then {args.minutes:g} min at 64 px from its final/")
    small = train(config(args.data, 32, args.images), workspace, progress=False,
                  extra_callbacks=[Clock(None, 0, part, part, label="32 px")])
    grown_clock = Clock(scorer, args.num, args.every, part, offset=part, label="grown")
    grown = train(config(args.data, 64, args.images, pretrained=str(Path(small["folder"]) / "final")), workspace,
                  name="grown-64", progress=False, extra_callbacks=[grown_clock])
    print(f"scratch: {2 * args.minutes:g} min at 64 px")
    scratch_clock = Clock(scorer, args.num, args.every, 2 * part, label="scratch")
    scratch = train(big, workspace, name="scratch-64", progress=False, extra_callbacks=[scratch_clock])
    print(f"\nsteps: 32 px {small['step']}, grown at 64 px {grown['step']}, scratch at 64 px {scratch['step']}")

    print("\ntraining s   FD grown   FD scratch   grown / scratch")
    scratch_at = {round(t / args.every): fd for t, fd in scratch_clock.curve}
    for t, fd in grown_clock.curve:
        other = scratch_at.get(round(t / args.every))
        ratio = f"{fd / other:.2f}" if other else "-"
        print(f"{t:10.0f}   {fd:8.3f}   {other if other is not None else float('nan'):10.3f}   {ratio:>8}")
    final_grown = grown_clock.curve[-1][1]
    reached = next((t for t, fd in scratch_clock.curve if fd <= final_grown), None)
    print(f"\nthe grown arm's final 64 px FD {final_grown:.3f} after {2 * part:.0f} s of training; the scratch arm "
          + (f"reached it after {reached:.0f} s" if reached is not None else
             f"did not reach it within {2 * part:.0f} s (its best {min(fd for _, fd in scratch_clock.curve):.3f})"))


if __name__ == "__main__":
    main()
