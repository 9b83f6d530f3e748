"""Preparing a dataset into the cache: decode and preprocess in parallel worker processes, reuse what is there.

Rows are written in the order of the source's records whatever the number of workers, so one worker and many
give byte-identical arrays. Records whose identity (a file's path, size and modification time) is already in a
cache of the same source and preprocessing are copied from it instead of decoded: adding, changing or removing
files decodes only those.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import CacheWriter, Prepared, caches_of
from .source import Record, StopRequested
from .transforms import BadImage, preprocess, to_image

CHUNK = 32  # records per task: large enough to amortise the pipe, small enough for a smooth progress bar


@dataclass(frozen=True)
class Preprocessing:
    size: int
    channels: int
    resize: str
    center_crop: bool
    max_megapixels: float

    @property
    def chw(self) -> tuple[int, int, int]:
        return self.channels, self.size, self.size


# Progress: called with (rows done, rows in all, images decoded per second) a few times a second.
Progress = Callable[[int, int, float], None]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_chunk(task: tuple[list, Preprocessing]) -> list[tuple[np.ndarray | None, str]]:
    """(C x H x W uint8 pixels, "") for each item that preprocesses, (None, reason) for the others."""
    items, pre = task
    out = []
    for item in items:
        try:
            img = to_image(item, pre.max_megapixels)
            out.append((preprocess(img, pre.size, pre.channels, pre.resize, pre.center_crop).transpose(2, 0, 1), ""))
        except BadImage as exc:
            out.append((None, str(exc)))
    return out


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool


def _decoded(items: Iterator, count: int, pre: Preprocessing, workers: int) -> tuple[Iterator[tuple[np.ndarray | None, str]], Callable]:
    """Results for the `count` `items`, in order, from `workers` processes (or this one); and a function that stops
    them. Items are taken a chunk at a time (the pool's pipe holds only a few), so a hub dataset's rows are never all
    in memory at once."""
    tasks = ((chunk, pre) for chunk in iter(lambda: list(itertools.islice(items, CHUNK)), []))
    if workers <= 1 or count < 2 * CHUNK:
        return (r for chunk in map(decode_chunk, tasks) for r in chunk), lambda: None
    # fork: workers start at once and need only Pillow and numpy (they never touch torch's thread pools).
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = context.Pool(workers, initializer=_worker_init)
    results = (r for chunk in pool.imap(decode_chunk, tasks) for r in chunk)

    def close():
        pool.terminate()
        pool.join()

    return results, close


def prepare_records(records: Sequence[Record], pre: Preprocessing, root: Path, key: str, lineage: str,
                    class_names: list[str], skipped: list[tuple[str, str]], workers: int = 0,
                    progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                    source_identities: set[str] | None = None) -> Prepared:
    """Write the cache `root/key` from `records`, reusing rows of other caches of the same `lineage`.
    `source_identities` (every record of the source, selected or not) lets caches of files that are gone go."""
    known: dict[str, tuple[Prepared, int]] = {}
    for other in caches_of(root, lineage):
        known.update({ident: (other, row) for row, ident in enumerate(other.identities) if ident})
    reuse = [known.get(r.identity) if r.identity else None for r in records] if known else [None] * len(records)
    todo = (r.image for r, hit in zip(records, reuse) if hit is None)
    writer = CacheWriter(root, key, pre.chw)
    results, close = _decoded(todo, reuse.count(None), pre, workers or default_workers())
    skipped, total, decoded = list(skipped), len(records), 0
    start = last = time.perf_counter()
    try:
        for done, (rec, hit) in enumerate(zip(records, reuse), 1):
            if hit is not None:
                other, row = hit
                writer.add(other.pixels[row], rec.label, rec.caption, rec.name, rec.identity)
            else:
                pixels, reason = next(results)
                decoded += 1
                if pixels is None:
                    skipped.append((rec.name or str(rec.image), reason))
                else:
                    writer.add(pixels, rec.label, rec.caption, rec.name, rec.identity)
            now = time.perf_counter()
            if now - last > 0.5 or done == total:
                last = now
                if should_stop is not None and should_stop():
                    raise StopRequested("stopped while preparing the dataset")
                if progress is not None:
                    progress(done, total, decoded / max(now - start, 1e-9))
        info = {"lineage": lineage, "decoded": decoded, "reused": total - decoded}
        prepared = writer.finish(class_names, skipped, info)
    except BaseException:
        writer.abort()
        raise
    finally:
        close()
    if source_identities is not None:  # older states of a folder: their useful rows were copied
        for other in caches_of(root, lineage):
            if other.folder != prepared.folder and any(i not in source_identities for i in other.identities):
                shutil.rmtree(other.folder, ignore_errors=True)
    return prepared
