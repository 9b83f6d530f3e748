"""What checking a prepared dataset's checksums costs when a process opens it, against reading its images once
(one epoch through the memory map, as training does) and against opening it unchecked (sizes only, as before).

    python bench/cache_checksums.py [--images 50000] [--size 32]

Writes a cache of random images (CIFAR-10's shape by default: 50,000 x 3 x 32 x 32, 154 MB) in a temporary folder
through the cache writer, then times, side by side in one run: opening it with the sizes checked only, opening it
with every chunk's CRC-32 checked (what a process does once), opening it again (the file is unchanged: trusted by
its inode, size and time), and one pass over all images in shuffled batches of 64. Reads come from the page cache.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.data import cache


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--size", type=int, default=32)
    args = p.parse_args()
    chw = (3, args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        writer = cache.CacheWriter(root, "bench", chw)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for i in range(args.images):
            writer.add(rng.integers(0, 255, chw, dtype=np.uint8), i % 10, "", f"{i}", f"{i}")
        prepared = writer.finish(["c"] * 10, [], {})
        write_seconds = time.perf_counter() - start
        folder = prepared.folder
        old = time.time() - 60  # as a cache written a minute ago (one written just now is never trusted by its stat)
        os.utime(folder / cache.IMAGES, (old, old))
        meta = json.loads((folder / cache.META).read_text())
        unchecked = folder.parent / "unchecked"
        unchecked.mkdir()
        for name in (cache.IMAGES, cache.ROWS):
            os.link(folder / name, unchecked / name)
        (unchecked / cache.META).write_text(json.dumps({k: v for k, v in meta.items() if k != "checksums"}))

        def checked_first():
            cache._verified.clear()
            assert cache.open_prepared(folder)

        sizes_only = timed(lambda: cache.open_prepared(unchecked))
        first = timed(checked_first)
        cache.open_prepared(folder)
        again = timed(lambda: cache.open_prepared(folder))
        pixels = cache.open_prepared(folder).pixels

        order = np.random.default_rng(1).permutation(len(pixels))

        def epoch():  # shuffled batches, copied out of the map as the training data loader does
            for i in range(0, len(order), 64):
                np.ascontiguousarray(pixels[np.sort(order[i:i + 64])])

        one_epoch = timed(epoch)
        mb = (folder / cache.IMAGES).stat().st_size / 1e6
        print(f"cache of {args.images:,} images of {'x'.join(map(str, chw))}: {mb:,.0f} MB (written in {write_seconds:.1f} s)")
        print(f"open, sizes only (before):    {sizes_only * 1000:8.1f} ms")
        print(f"open, checksums checked:      {first * 1000:8.1f} ms  ({first / sizes_only:.0f}x; {mb / first / 1000:.2f} GB/s)")
        print(f"open again, file unchanged:   {again * 1000:8.1f} ms  ({again / sizes_only:.1f}x)")
        print(f"one epoch read (shuffled, 64s):{one_epoch * 1000:8.1f} ms  (the check is {first / one_epoch:.2f}x an epoch's reads)")
        print(f"load average while measured: {os.getloadavg()[0]:.1f} (other sessions' work on this machine)")


if __name__ == "__main__":
    main()
