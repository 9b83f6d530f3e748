"""Image folders: recursive, the first-level subfolder is the class, captions from captions.json or metadata.jsonl."""
from __future__ import annotations

import json
from pathlib import Path

from .source import Record, Source
from .transforms import IMAGE_SUFFIXES

METADATA_FILES = {"captions.json", "metadata.jsonl"}


def read_captions(root: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Captions keyed by path relative to root; problems are returned, not raised."""
    captions: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(root.rglob("captions.json")):
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("expected an object {file name: caption}")
            base = path.parent.relative_to(root)
            captions.update({(base / k).as_posix(): str(v) for k, v in data.items()})
        except (ValueError, OSError) as exc:
            problems.append((str(path), f"captions ignored: {exc}"))
    for path in sorted(root.rglob("metadata.jsonl")):
        base = path.parent.relative_to(root)
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                captions[(base / row["file_name"]).as_posix()] = str(row.get("text", row.get("caption", "")))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append((f"{path}:{n}", f"line ignored: {exc}"))
    return captions, problems


def image_folder(root: str | Path) -> Source:
    root = Path(root)
    captions, skipped = read_captions(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    images = []
    for path in files:
        if path.name in METADATA_FILES:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            skipped.append((str(path), "not an image file"))
    rel = [p.relative_to(root) for p in images]
    labelled = bool(rel) and all(len(r.parts) > 1 for r in rel)
    class_names = sorted({r.parts[0] for r in rel}) if labelled else []
    records = []
    for path, r in zip(images, rel):
        label = class_names.index(r.parts[0]) if labelled else -1
        caption = captions.get(r.as_posix(), captions.get(r.name, ""))
        records.append(Record(path, label, caption, r.as_posix()))
    return Source(records, class_names, skipped)
