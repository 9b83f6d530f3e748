"""Hugging Face datasets by hub id or local path, with configurable image, label and caption columns."""
from __future__ import annotations

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
        caption = str(row[cfg.caption_column]) if cfg.caption_column else ""
        records.append(Record(row[cfg.image_column], label, caption, f"{name}[{i}]"))
    return Source(records, class_names)
