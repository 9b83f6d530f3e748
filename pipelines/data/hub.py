"""Hugging Face datasets by hub id or local path, with configurable image, label and caption columns.

An image column may hold image URLs (COCO caption sets do): they are fetched, several at a time, when the
dataset is read; a URL that fails is skipped and counted like a corrupt file. A caption column may hold a
list of captions per image (COCO has five): the first is used.
"""
from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .source import Record, Source


def is_saved_dataset(path: Path) -> bool:
    """A folder written by datasets' save_to_disk, or one holding parquet/arrow data files."""
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return True
    return any(path.rglob("*.parquet")) or any(path.rglob("*.arrow"))


def hub_dataset(name: str, cfg, seed: int) -> Source:
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
        # Only the chosen rows are decoded; the shuffle is an index mapping.
        ds = ds.shuffle(seed=seed).select(range(cfg.num_samples))
    class_names: list[str] = []
    if label_column:
        feature = ds.features[label_column]
        class_names = list(getattr(feature, "names", None) or [str(v) for v in sorted(set(ds[label_column]))])
    records = []
    for i, row in enumerate(ds):
        label = int(row[label_column]) if label_column and getattr(ds.features[label_column], "names", None) else \
            (class_names.index(str(row[label_column])) if label_column else -1)
        caption = row[cfg.caption_column] if cfg.caption_column else ""
        caption = str(caption[0] if isinstance(caption, list) and caption else caption or "")
        records.append(Record(row[cfg.image_column], label, caption, f"{name}[{i}]"))
    return fetch_urls(Source(records, class_names))


def is_url(value) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def fetch(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch_urls(source: Source, workers: int = 16) -> Source:
    """Records whose image is a URL get the downloaded bytes; those that cannot be fetched are skipped."""
    from tqdm.auto import tqdm

    at = [i for i, r in enumerate(source.records) if is_url(r.image)]
    if not at:
        return source

    def get(url):
        try:
            return fetch(url), None
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            return None, f"could not fetch {url}: {exc}"

    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(get, [source.records[i].image for i in at]), total=len(at), desc="fetching images",
                            unit="image", disable=len(at) < 50))
    records, skipped = list(source.records), list(source.skipped)
    for i, (data, problem) in zip(at, results):
        if data is None:
            skipped.append((records[i].name, problem))
            records[i] = None
        else:
            records[i] = Record({"bytes": data}, records[i].label, records[i].caption, records[i].name)
    return Source([r for r in records if r is not None], source.class_names, skipped)
