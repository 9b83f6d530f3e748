"""Wall-clock seconds for the studio's default digits recipe to reach the quality that the recipe of diffusers'
`examples/unconditional_image_generation/train_unconditional.py` (its defaults) reaches in 10 minutes, on a
UNet of the same size, both trained here in this one run. Then FD of DPM-Solver++ 20, DDIM 50 and DDPM 1000
on the studio's checkpoint.

    python bench/time_to_quality.py [--reference-minutes 10] [--num 500] [--sampler-num 500]
    python bench/time_to_quality.py --samplers-only checkpoints/ddpm-digits-16/final   # the sampler part alone

Quality is FD (digits-cnn) of EMA samples (DPM-Solver++ 20 steps for both recipes) against the training split,
with the same number of samples everywhere (FD depends on it). Training time excludes the evaluations.
Target: the studio reaches the reference's 10-minute FD at least 3x sooner; DPM-Solver++ 20 no worse than DDIM 50.
The samplers are compared on the studio run's final/ after its whole budget. Takes about 35 minutes on
2 CPU cores (DDPM 1000 steps alone about 9).
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.config import DiffusionConfig, load_config  # noqa: E402
from pipelines.data import load_splits  # noqa: E402
from pipelines.metrics.evaluate import Scorer  # noqa: E402
from pipelines.models.unet import build_unet  # noqa: E402
from pipelines.sample.diffusion import denoise, make_noise_scheduler, make_sampler, seed_noise, to_uint8  # noqa: E402
from pipelines.families.ddpm.model import generate, load_diffusion  # noqa: E402
from pipelines.train.callbacks import Callback  # noqa: E402
from pipelines.train.run import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def sampler_of(unet, scheduler, name="dpm++", steps=20):
    def sample(n, seed):
        noise = seed_noise(list(range(seed, seed + n)), (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size))
        return to_uint8(denoise(unet, make_sampler(name, scheduler), noise, steps))
    return sample


def train_reference(config, scorer, minutes: float, num: int, every_seconds: float) -> list[tuple[float, float]]:
    """train_unconditional.py's defaults: linear betas, epsilon, AdamW(1e-4, (0.95, 0.999), wd 1e-6), cosine with
    500 warm-up steps over 100 epochs, EMA with warm-up (inv_gamma 1, power 3/4, max 0.9999), batch 16, clip 1."""
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    data = load_splits(config.data).train.all_images()
    unet = build_unet(config.model, config.data.image_size, config.data.channels, 0)
    scheduler = make_noise_scheduler(DiffusionConfig(beta_schedule="linear", prediction="epsilon", loss_weighting="none"))
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    steps_per_epoch = len(data) // 16
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, 500, steps_per_epoch * 100)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    ema_unet = copy.deepcopy(unet).eval()
    curve, trained, next_eval, epoch = [], 0.0, every_seconds, 0
    while trained < minutes * 60:
        tick = time.perf_counter()
        for batch in torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))[: steps_per_epoch * 16].split(16):
            x0 = data[batch].float() / 127.5 - 1
            noise = torch.randn_like(x0)
            t = torch.randint(0, 1000, (len(x0),))
            loss = F.mse_loss(unet(scheduler.add_noise(x0, noise, t), t).sample, noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            lr_schedule.step()
            optimizer.zero_grad()
            ema.step(unet.parameters())
            if trained + time.perf_counter() - tick >= min(next_eval, minutes * 60):
                break
        trained += time.perf_counter() - tick
        epoch += 1
        if trained >= min(next_eval, minutes * 60):
            ema.copy_to(ema_unet.parameters())
            fd = scorer.score(sampler_of(ema_unet, scheduler), num).fd
            curve.append((trained, fd))
            print(f"  reference  {trained:6.0f} s  epoch {epoch:3d}  FD {fd:.4f}", flush=True)
            next_eval += every_seconds
    return curve


class QualityClock(Callback):
    """Evaluates the studio run every `every` seconds of training time, notes when FD <= target, and stops it
    when its training time reaches `cap` (the recipe's own budget, counted without these evaluations)."""

    def __init__(self, scorer, num, every, target, cap):
        self.scorer, self.num, self.every, self.target, self.cap = scorer, num, every, target, cap
        self.curve, self.paused, self.reached = [], 0.0, None

    def on_start(self, trainer):
        self.start, self.next = time.perf_counter(), self.every

    def on_epoch_end(self, trainer):
        trained = time.perf_counter() - self.start - self.paused
        if trained < self.next:
            return
        tick = time.perf_counter()
        fd = self.scorer.score(lambda n, seed: trainer.family.sample_images(n, seed, sampler="dpm++", steps=20), self.num).fd
        self.paused += time.perf_counter() - tick
        self.curve.append((trained, fd))
        print(f"  studio     {trained:6.0f} s  epoch {trainer.state.epoch:3d}  FD {fd:.4f}", flush=True)
        if self.reached is None and fd <= self.target:
            self.reached = trained
        # Once the target is reached, the rest of the budget trains the checkpoint the samplers are compared on.
        self.next = trained + (self.every if self.reached is None else 4 * self.every)
        if trained >= self.cap:
            trainer.request_stop("training-time budget")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference-minutes", type=float, default=10.0)
    parser.add_argument("--num", type=int, default=500, help="samples per FD (the same everywhere)")
    parser.add_argument("--sampler-num", type=int, default=500, help="samples per sampler in the sampler comparison")
    parser.add_argument("--samplers-only", type=Path, metavar="CHECKPOINT",
                        help="skip the training race: only compare the samplers on this checkpoint of a digits run")
    args = parser.parse_args()
    preset = load_config(ROOT / "configs" / "ddpm_digits16.yaml")
    budget = preset.training.max_minutes * 60
    # The studio's own evaluations are off, and its time budget is enforced below on training time only.
    config = load_config(ROOT / "configs" / "ddpm_digits16.yaml", ["evaluation.every_epochs=0", "training.max_minutes=null"])
    workspace = Path(tempfile.mkdtemp(prefix="ttq-"))
    splits = load_splits(config.data)
    scorer = Scorer("digits", splits.train, "train", "digits-cnn", workspace / "cache")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FD (digits-cnn), {args.num} samples vs "
          f"{len(scorer.real)} training images; DPM-Solver++ 20 steps, EMA weights")

    if args.samplers_only:
        return compare_samplers(args.samplers_only, scorer, args.sampler_num)
    print(f"reference recipe (train_unconditional.py defaults), {args.reference_minutes:g} minutes:")
    ref = train_reference(config, scorer, args.reference_minutes, args.num, every_seconds=60)
    target = ref[-1][1]

    print(f"studio default (configs/ddpm_digits16.yaml), its {budget / 60:g}-minute budget; target FD <= {target:.4f}:")
    clock = QualityClock(scorer, args.num, every=15, target=target, cap=budget)
    row = train(config, workspace, progress=False, extra_callbacks=[clock])
    reached = clock.reached
    print(f"\nreference FD after {ref[-1][0]:.0f} s of training: {target:.4f}")
    if reached is None:
        print(f"studio default did not reach it within its {budget / 60:g}-minute budget "
              f"(best FD {min(fd for _, fd in clock.curve):.4f}); target 3x sooner: MISSED")
    else:
        speedup = ref[-1][0] / reached
        print(f"studio default reached it after {reached:.0f} s: {speedup:.1f}x sooner (target 3x: {'met' if speedup >= 3 else 'MISSED'})")

    compare_samplers(Path(row["folder"]) / "final", scorer, args.sampler_num)


def compare_samplers(checkpoint: Path, scorer, num: int) -> None:
    model = load_diffusion(checkpoint)
    print(f"\nsamplers on {checkpoint}, {num} samples each:")
    results = {}
    for name, steps in (("dpm++", 20), ("ddim", 50), ("ddpm", 1000)):
        tick = time.perf_counter()
        result = scorer.score(lambda n, seed, name=name, steps=steps: generate(model, name, steps, n, seed, batch_size=n), num)
        results[name] = result.fd
        print(f"  {name:>6} {steps:4d} steps: FD {result.fd:.4f}  KID {result.kid:.4f}  ({time.perf_counter() - tick:.0f} s)", flush=True)
    print(f"DPM-Solver++ 20 no worse than DDIM 50: {'yes' if results['dpm++'] <= results['ddim'] else 'NO'}")


if __name__ == "__main__":
    main()
