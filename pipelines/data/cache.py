"""The prepared-dataset cache: `<workspace>/cache/datasets/<key>/`, one folder per source and preprocessing.

A folder holds the preprocessed images as one uint8 array (N x C x H x W, `images.u8`, read through a memory map),
the rows' labels, captions, source names and identities (`rows.json`), and `meta.json` (shape, file sizes, class
names, the files that were skipped and why). It is written under a temporary name and renamed when complete;
`meta.json` records every file's size, so a folder whose files are missing or truncated is found out and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store import process_alive

IMAGES, ROWS, META = "images.u8", "rows.json", "meta.json"


def digest(value) -> str:
    """A short stable hash of any JSON-serialisable value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass
class Prepared:
    """A complete cache folder, opened: `pixels` is a read-only memory map, so no process holds the images."""
    folder: Path
    pixels: np.ndarray
    labels: np.ndarray
    captions: list[str]
    names: list[str]
    identities: list[str]
    class_names: list[str]
    skipped: list[tuple[str, str]]
    meta: dict

    def __len__(self) -> int:
        return len(self.pixels)

    def __bool__(self) -> bool:  # an opened cache is there, even with no usable image in it
        return True


def open_prepared(folder: Path) -> Prepared | None:
    """The cache at `folder`, or None when it is absent or incomplete (then it is removed, to be rebuilt)."""
    if not folder.is_dir():
        return None
    try:
        meta = json.loads((folder / META).read_text())
        sizes = {name: (folder / name).stat().st_size for name in meta["sizes"]}
        n, c, h, w = meta["shape"]
        if sizes != meta["sizes"] or sizes[IMAGES] != n * c * h * w:
            raise ValueError(f"file sizes {sizes} are not those recorded {meta['sizes']}")
        rows = json.loads((folder / ROWS).read_text())
        if not all(len(rows[k]) == n for k in ("labels", "captions", "names", "identities")):
            raise ValueError("rows.json does not describe every image")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return _Rebuilt(str(exc))
    pixels = np.memmap(folder / IMAGES, np.uint8, "r", shape=(n, c, h, w)) if n else np.zeros((0, c, h, w), np.uint8)
    return Prepared(folder, pixels, np.asarray(rows["labels"], dtype=np.int64), rows["captions"], rows["names"],
                    rows["identities"], meta["class_names"], [tuple(s) for s in meta["skipped"]], meta)


class _Rebuilt:
    """What `open_prepared` says about a broken cache folder it removed (falsy: the caller prepares it again)."""

    def __init__(self, reason: str):
        self.reason = reason

    def __bool__(self) -> bool:
        return False


class CacheWriter:
    """Appends preprocessed rows to a temporary folder; `finish()` renames it into place when complete."""

    def __init__(self, root: Path, key: str, chw: tuple[int, int, int]):
        root.mkdir(parents=True, exist_ok=True)
        remove_abandoned(root)
        self.root, self.key, self.chw = root, key, chw
        self.tmp = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self.file = open(self.tmp / IMAGES, "wb")
        self.rows: dict[str, list] = {"labels": [], "captions": [], "names": [], "identities": []}

    def add(self, chw_pixels: np.ndarray, label: int, caption: str, name: str, identity: str) -> None:
        if chw_pixels.shape != self.chw:
            raise ValueError(f"a row of shape {chw_pixels.shape} in a cache of {self.chw}")
        self.file.write(np.ascontiguousarray(chw_pixels, dtype=np.uint8).tobytes())
        for field, value in zip(self.rows, (int(label), caption, name, identity)):
            self.rows[field].append(value)

    def finish(self, class_names: list[str], skipped: list[tuple[str, str]], info: dict) -> Prepared:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        (self.tmp / ROWS).write_text(json.dumps(self.rows))
        sizes = {name: (self.tmp / name).stat().st_size for name in (IMAGES, ROWS)}
        meta = {"key": self.key, "shape": [len(self.rows["labels"]), *self.chw], "sizes": sizes,
                "class_names": list(class_names), "skipped": [list(s) for s in skipped], "created": time.time(), **info}
        (self.tmp / META).write_text(json.dumps(meta))
        final = self.root / self.key
        try:
            self.tmp.rename(final)
        except OSError:  # another process prepared the same data meanwhile: theirs is as good
            shutil.rmtree(self.tmp, ignore_errors=True)
        prepared = open_prepared(final)
        if not prepared:
            raise RuntimeError(f"the prepared dataset {final} was written but does not read back")
        return prepared

    def abort(self) -> None:
        self.file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def remove_abandoned(root: Path) -> None:
    """Temporary folders of preparations whose process is gone (killed): never used, only removed."""
    for tmp in root.glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[2])
        except (IndexError, ValueError):
            pid = 0
        if pid <= 0 or not process_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def caches_of(root: Path, lineage: str) -> list[Prepared]:
    """Complete caches of the same source and preprocessing (another selection or an older state of a folder)."""
    found = []
    for meta_file in root.glob(f"*/{META}"):
        try:
            if json.loads(meta_file.read_text()).get("lineage") == lineage:
                found.append(open_prepared(meta_file.parent))
        except (OSError, ValueError):
            continue
    return [p for p in found if p]
