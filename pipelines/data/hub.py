"""Hugging Face datasets by hub id or local path, with configurable image, label and caption columns.

Rows are read lazily (the images undecoded) so a dataset of any size never becomes a list of images in memory.
An image column may hold image URLs (COCO caption sets do): they are downloaded once, several at a time, into
`<cache>/downloads/` and reused by every later run; a URL that fails is skipped and counted like a corrupt file.
A caption column may hold a list of captions per image (COCO has five): the first is used.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .source import Record, Source, StopRequested, Unavailable


def is_saved_dataset(path: Path) -> bool:
    """A folder written by datasets' save_to_disk, or one holding parquet/arrow data files."""
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return True
    return any(path.rglob("*.parquet")) or any(path.rglob("*.arrow"))


class HubRows(Sequence):
    """The rows of a dataset as Records, read one at a time; images stay undecoded bytes until a worker decodes them."""

    def __init__(self, ds, name: str, image_column: str, labels: list[int], captions: list[str], urls: dict | None):
        self.ds, self.name, self.image_column = ds, name, image_column
        self.labels, self.captions, self.urls = labels, captions, urls

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Record:
        image = self.ds[i][self.image_column]
        if self.urls is not None and is_url(image):
            image = self.urls[image]
        return Record(image, self.labels[i], self.captions[i], f"{self.name}[{i}]")


def hub_dataset(name: str, cfg, seed: int, downloads: Path | None = None, should_stop=None) -> Source:
    import datasets

    path = Path(name)
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[cfg.hub_split]
    else:
        ds = datasets.load_dataset(name, split=cfg.hub_split)
    missing = [c for c in (cfg.image_column, cfg.caption_column) if c and c not in ds.column_names]
    if missing:
        raise ValueError(f"data.image_column/caption_column: column {missing[0]!r} not in {name}; columns: {', '.join(ds.column_names)}")
    label_column = cfg.label_column if cfg.label_column in ds.column_names else None
    if cfg.num_samples and cfg.num_samples < len(ds):
        # Only the chosen rows are read; the shuffle is an index mapping.
        ds = ds.shuffle(seed=seed).select(range(cfg.num_samples))
    if isinstance(ds.features[cfg.image_column], datasets.Image):
        ds = ds.cast_column(cfg.image_column, datasets.Image(decode=False))  # bytes: the workers decode
    class_names: list[str] = []
    labels = [-1] * len(ds)
    if label_column:
        feature, values = ds.features[label_column], ds[label_column]
        if getattr(feature, "names", None):
            class_names, labels = list(feature.names), [int(v) for v in values]
        else:
            class_names = [str(v) for v in sorted(set(values))]
            labels = [class_names.index(str(v)) for v in values]
    captions = [""] * len(ds)
    if cfg.caption_column:
        captions = [str(c[0] if isinstance(c, list) and c else c or "") for c in ds[cfg.caption_column]]
    urls = None
    if ds.features[cfg.image_column].dtype == "string":
        column = ds[cfg.image_column]
        urls = download_all([u for u in column if is_url(u)], downloads, should_stop)
    fingerprint = getattr(ds, "_fingerprint", None)
    key = {"hub": name, "fingerprint": fingerprint, "split": cfg.hub_split, "columns": [cfg.image_column, label_column, cfg.caption_column],
           "rows": [cfg.num_samples, seed]}
    return Source(HubRows(ds, name, cfg.image_column, labels, captions, urls), class_names, key=key)


def is_url(value) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def fetch(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def download_all(urls: list[str], folder: Path | None, should_stop=None, workers: int = 16) -> dict:
    """url -> the downloaded file (a Path), or Unavailable(reason). Files already in `folder` are not fetched
    again, so an interrupted download resumes where it stopped; without a folder the bytes stay in memory."""
    from tqdm.auto import tqdm

    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    def get(url):
        if should_stop is not None and should_stop():
            raise StopRequested("stopped while downloading images")
        target = folder / hashlib.sha256(url.encode()).hexdigest()[:32] if folder is not None else None
        if target is not None and target.exists():
            return target
        try:
            data = fetch(url)
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            return Unavailable(f"could not fetch {url}: {exc}")
        if target is None:
            return {"bytes": data}
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)  # never a half-written file under the final name
        return target

    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(get, urls), total=len(urls), desc="fetching images", unit="image",
                            disable=len(urls) < 50))
    return dict(zip(urls, results))
