"""Training images/s: the studio's loop (with all its callbacks) against a plain diffusers loop.

Both train the same UNet on the same batches in this process; the ratio must be at least 0.95.
Then the studio's loop with bf16 autocast on the CPU, with the loss it reaches after the same steps.

    python bench/train_throughput.py [--steps 260]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffusers import DDPMScheduler  # noqa: E402

from pipelines.config import load_config  # noqa: E402
from pipelines.data import load_splits  # noqa: E402
from pipelines.models.unet import build_unet  # noqa: E402
from pipelines.train.callbacks import Callback  # noqa: E402
from pipelines.train.run import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "digits 16x16 (default)": (ROOT / "configs" / "ddpm_digits16.yaml", []),
    "shapes 32x32 RGB": (ROOT / "configs" / "ddpm_digits16.yaml",
                         ["data.dataset=shapes", "data.image_size=32", "data.channels=3", "data.synthetic_count=2000",
                          "model.attention_resolutions=[8]"]),
}


class StepClock(Callback):
    """Wall time from the end of step `warmup` to the last step, callbacks included."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.steps, self.losses = warmup, None, None, 0, []

    def on_step_end(self, trainer, logs):
        self.losses.append(logs["loss"])
        if trainer.state.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.state.global_step > self.warmup:
            self.end, self.steps = time.perf_counter(), self.steps + 1


class StopAfter(Callback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, trainer, logs):
        if trainer.state.global_step >= self.steps:
            trainer.request_stop("benchmark done")


def studio_rate(config_path, overrides, steps, precision="no"):
    """The real train() with every callback (store, log, progress, sample grids, checkpoints)."""
    cfg = load_config(config_path, overrides + ["training.max_minutes=null", f"training.mixed_precision={precision}",
                                                "training.epochs=1000"])
    clock = StepClock(warmup=5)
    with tempfile.TemporaryDirectory() as ws:
        train(cfg, ws, progress=False, extra_callbacks=[clock, StopAfter(steps)])
    return clock.steps * cfg.training.batch_size / (clock.end - clock.start), sum(clock.losses[-50:]) / 50


def plain_rate(config_path, overrides, steps):
    """UNet2DModel + DDPMScheduler + AdamW, same model, batch and data; nothing else."""
    cfg = load_config(config_path, overrides)
    torch.manual_seed(0)
    data = load_splits(cfg.data).train.all_images()
    unet = build_unet(cfg.model, cfg.data.image_size, cfg.data.channels)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.training.learning_rate)
    bs = cfg.training.batch_size
    start = None
    for step in range(steps):
        if step == 5:
            start = time.perf_counter()
        idx = torch.randint(0, len(data), (bs,))
        x = data[idx].float() / 127.5 - 1
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (bs,))
        pred = unet(sched.add_noise(x, noise, t), t).sample
        loss = torch.nn.functional.mse_loss(pred, sched.get_velocity(x, noise, t))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (steps - 5) * bs / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=260, help="260 steps of the digits default span 10 epochs: one sample grid, one checkpoint")
    parser.add_argument("--rounds", type=int, default=2, help="repeat each measurement and keep the best")
    parser.add_argument("--only", choices=["digits", "shapes"], help="run one of the two configs")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps each, best of {args.rounds} rounds")
    for name, (path, overrides) in CONFIGS.items():
        if args.only and not name.startswith(args.only):
            continue
        # Best of several rounds: other load on a shared machine only ever slows a run down.
        plain = studio = bf16 = 0.0
        for _ in range(args.rounds):
            plain = max(plain, plain_rate(path, overrides, args.steps))
            rate, loss32 = studio_rate(path, overrides, args.steps)
            studio = max(studio, rate)
            rate, loss16 = studio_rate(path, overrides, args.steps, "bf16")
            bf16 = max(bf16, rate)
        print(f"{name}: plain diffusers loop {plain:.0f} img/s | studio loop {studio:.0f} img/s "
              f"(ratio {studio / plain:.3f}) | studio bf16 {bf16:.0f} img/s ({bf16 / studio:.2f}x fp32); "
              f"loss over the last 50 steps fp32 {loss32:.4f}, bf16 {loss16:.4f}")


if __name__ == "__main__":
    main()
