"""Peak memory of comparing 8 checkpoints against comparing 2 (the Compare tab loads one at a time).

    python bench/compare_memory.py [--preset ddpm_64.yaml] [--steps 5] [--num 2]

Writes 8 untrained checkpoints of the preset's UNet (different random weights; memory does not depend on
training), then compares 2 of them and all 8, each in a fresh child process so that its peak resident memory
(VmHWM, Linux) is its own; the interpreter with the engine imported is measured the same way. Target: 8 peaks no
higher than 1.5 x 2.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child would report its parent's peak.
CHILD = """
import json, re, sys
sys.path.insert(0, {root!r})
from pipelines.api import SampleRequest, compare
paths, steps, num = {paths!r}, {steps}, {num}
columns = compare(paths, SampleRequest(sampler="ddim", steps=steps, num=num)) if paths else []
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({{"peak_mib": peak_kib / 1024, "seconds": [round(c.seconds, 2) for c in columns]}}))
"""


def write_checkpoints(preset: str, folder: Path, count: int) -> list[str]:
    import torch
    from diffusers import DDPMPipeline

    from pipelines.config import load_config
    from pipelines.models.unet import build_unet
    from pipelines.sample.diffusion import make_noise_scheduler

    config = load_config(ROOT / "configs" / preset)
    paths = []
    for i in range(count):
        torch.manual_seed(i)
        unet = build_unet(config.model, config.data.image_size, config.data.channels)
        path = folder / f"checkpoint-{i}"
        DDPMPipeline(unet=unet, scheduler=make_noise_scheduler(config.diffusion)).save_pretrained(path)
        paths.append(str(path))
    size = sum(p.stat().st_size for p in Path(paths[0]).rglob("*.safetensors")) / 2**20
    print(f"{count} checkpoints of {preset}'s UNet ({sum(p.numel() for p in unet.parameters()) / 1e6:.1f}M parameters, "
          f"{size:.0f} MiB each)")
    return paths


def measure(paths: list[str], steps: int, num: int) -> dict:
    code = CHILD.format(root=str(ROOT), paths=paths, steps=steps, num=num)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="ddpm_64.yaml", help="a diffusion preset whose UNet is used")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--num", type=int, default=2, help="images per checkpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_checkpoints(args.preset, Path(tmp), 8)
        base = measure([], args.steps, args.num)
        two = measure(paths[:2], args.steps, args.num)
        eight = measure(paths, args.steps, args.num)
    ratio = eight["peak_mib"] / two["peak_mib"]
    print(f"engine imported, nothing loaded: {base['peak_mib']:.0f} MiB peak")
    print(f"compare 2 checkpoints: {two['peak_mib']:.0f} MiB peak (sampling {sum(two['seconds']):.1f}s)")
    print(f"compare 8 checkpoints: {eight['peak_mib']:.0f} MiB peak (sampling {sum(eight['seconds']):.1f}s)")
    print(f"8 / 2 = {ratio:.2f} (target at most 1.5): {'met' if ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
