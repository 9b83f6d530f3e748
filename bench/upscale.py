"""Upscaling speed per model size on this machine, and the peak memory of a large tiled upscale.

    python bench/upscale.py [--sizes ultra_lite lite standard] [--memory-size lite] [--side 2048] [--tile 256]

Speed: input megapixels per second of a x4 upscale of a 256 x 256 photo (128 x 128 for `standard`), tiled
as the app does, best of 2 runs. Memory: a 2048 x 2048 x4 upscale (an 8192 x 8192 result) with tiling, run
in a fresh child process so its peak resident memory (VmHWM, Linux) is its own; the interpreter and torch
alone are measured the same way and printed too. Target: under 2 GiB. Weights are random (speed and memory
do not depend on them).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def photo(side: int):
    import skimage.data
    from PIL import Image

    return Image.fromarray(skimage.data.astronaut()).resize((side, side), Image.Resampling.LANCZOS)


def upscaler(size: str):
    import torch

    from pipelines.families.sr.networks import SRArch, initialise
    from pipelines.families.sr.model import Upscaler

    arch = SRArch.from_size(size, 4)
    torch.manual_seed(0)
    return Upscaler(initialise(arch.build()).eval(), arch, Path(size))


def child(mode: str, size: str, side: int, tile: int) -> None:
    """Runs in its own process: prints its peak resident memory as JSON."""
    out = {}
    if mode == "upscale":
        from pipelines.sample.upscale_images import upscale_image

        up, img = upscaler(size), photo(side)
        start = time.perf_counter()
        result = upscale_image(up, img, tile=tile, tile_pad=16)
        out = {"seconds": time.perf_counter() - start, "output": list(result.size)}
    else:
        import torch  # noqa: F401  the baseline: the interpreter with torch and the studio's modules loaded

        import pipelines.sample.upscale_images  # noqa: F401
    # VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so the child could report this script's own peak.
    out["peak_mib"] = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    print(json.dumps(out))


def measure_child(*args) -> dict:
    text = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], check=True, capture_output=True, text=True).stdout
    return json.loads(text.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["ultra_lite", "lite", "standard"])
    parser.add_argument("--memory-size", default="lite", help="model of the large upscale")
    parser.add_argument("--side", type=int, default=2048, help="input side of the large upscale")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, size, side, tile = args.child
        return child(mode, size, int(side), int(tile))

    import torch

    from pipelines.sample.upscale_images import upscale_image

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes:
        up = upscaler(size)
        side = 128 if size == "standard" else 256
        img = photo(side)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            upscale_image(up, img, tile=args.tile, tile_pad=16)
            times.append(time.perf_counter() - start)
        params = sum(p.numel() for p in up.model.parameters())
        mp = side * side / 1e6
        print(f"{size:10s} ({params / 1e6:.2f}M parameters): {mp / min(times):.4f} input MP/s "
              f"({side}x{side} -> {4 * side}x{4 * side} in {min(times):.2f} s)", flush=True)
    base = measure_child("baseline", args.memory_size, 0, 0)
    big = measure_child("upscale", args.memory_size, args.side, args.tile)
    print(f"peak memory, {args.memory_size} x4 of {args.side}x{args.side} -> {big['output'][0]}x{big['output'][1]}, "
          f"tile {args.tile}: {big['peak_mib']:.0f} MiB ({big['seconds']:.0f} s); python + torch alone: {base['peak_mib']:.0f} MiB; "
          f"{'meets' if big['peak_mib'] < 2048 else 'MISSES'} the 2 GiB target")


if __name__ == "__main__":
    main()
