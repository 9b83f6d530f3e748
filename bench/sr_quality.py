"""Super-resolution quality after a CPU budget: PSNR over bicubic x4 on photos held out of training.

    python bench/sr_quality.py [--minutes 20] [--config configs/sr_lite_x4.yaml]

Trains the preset (`lite`, x4, scikit-image's photos, bicubic degradation) for the budget, then scores best/
and final/ on the photos held out of training (the validation and the test photo), whole 256-px images, RGB
PSNR with a 4-pixel border left out, against Pillow's bicubic enlargement of the same LR input.
Target: at least +0.5 dB.
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
from pipelines.families.sr.data import load_sr_splits  # noqa: E402
from pipelines.families.sr.model import load_upscaler  # noqa: E402
from pipelines.train.run import train  # noqa: E402
from pipelines.families.sr.validation import psnr_ssim  # noqa: E402
from pipelines.families.sr.model import bicubic_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--config", default=str(ROOT / "configs" / "sr_lite_x4.yaml"))
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="sr-quality-"))
    config = load_config(args.config, [f"training.max_minutes={args.minutes}", "name=sr_quality"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {config.model.size} x{config.model.scale}, "
          f"{args.minutes:g} minutes, workspace {workspace}", flush=True)
    start = time.perf_counter()
    row = train(config, workspace, progress=False)
    print(f"trained {row['step']} steps ({row['epoch']} epochs) in {time.perf_counter() - start:.0f} s", flush=True)
    splits = load_sr_splits(config)
    held_out = [(split, i) for split in ("val", "test") for i in range(getattr(splits, split).num_images)]
    for kind in ("best", "final"):
        up = load_upscaler(Path(row["folder"]) / kind)
        gains = []
        for split, i in held_out:
            data = getattr(splits, split)
            lr, hr = data.pair(i)
            sr = (up.run(lr[None].float() / 255.0, tile=0)[0] * 255).round().to(torch.uint8)
            psnr, ssim = psnr_ssim(sr, hr, up.scale)
            base, base_ssim = psnr_ssim(bicubic_up(lr, up.scale), hr, up.scale)
            gains.append(psnr - base)
            print(f"{kind:5s} {data.names[i]:22s} ({split}): PSNR {psnr:.2f} dB vs bicubic {base:.2f} ({psnr - base:+.2f}); "
                  f"SSIM {ssim:.4f} vs {base_ssim:.4f}")
        mean = sum(gains) / len(gains)
        print(f"{kind}: mean gain over bicubic {mean:+.2f} dB on {len(gains)} held-out photos: "
              f"{'meets' if mean >= 0.5 else 'MISSES'} the +0.5 dB target")


if __name__ == "__main__":
    main()
