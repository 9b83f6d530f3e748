"""Image folders: recursive, the first-level subfolder is the class, captions from captions.json or metadata.jsonl."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .source import Record, Source, StopRequested
from .transforms import IMAGE_SUFFIXES

METADATA_FILES = {"captions.json", "metadata.jsonl"}


def read_captions(root: Path, files: list[Path]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Captions (from the captions.json and metadata.jsonl among `files`) keyed by path relative to root;
    problems are returned, not raised."""
    captions: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for path in (f for f in files if f.name == "captions.json"):
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("expected an object {file name: caption}")
            base = path.parent.relative_to(root)
            captions.update({(base / k).as_posix(): str(v) for k, v in data.items()})
        except (ValueError, OSError) as exc:
            problems.append((str(path), f"captions ignored: {exc}"))
    for path in (f for f in files if f.name == "metadata.jsonl"):
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


def scan_files(root: Path, should_stop=None) -> tuple[list[tuple[Path, os.stat_result]], list[tuple[str, str]]]:
    """Every file under root (symlinks followed, hidden names left out) with its stat, sorted by path; folders that
    cannot be read and symlink loops are returned as problems, not silently dropped."""
    files, problems, seen = [], [], set()
    stack = [root]

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix() or "."

    while stack:
        if should_stop is not None and should_stop():
            raise StopRequested("stopped while scanning the folder")
        folder = stack.pop()
        try:
            real = folder.stat()
            if (real.st_dev, real.st_ino) in seen:
                problems.append((rel(folder), "symlink loop: this folder was already scanned"))
                continue
            seen.add((real.st_dev, real.st_ino))
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append((rel(folder), f"folder not readable: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir():  # follows symlinks
                    stack.append(path)
                elif entry.is_file():
                    files.append((path, entry.stat()))
            except OSError as exc:
                problems.append((rel(path), f"not readable: {exc.strerror or exc}"))
    files.sort(key=lambda f: f[0].relative_to(root).parts)
    return files, problems


def image_folder(root: str | Path, should_stop=None) -> Source:
    """Records of a folder's images; each record's identity (path, size, modification time) tells the
    prepared-dataset cache whether it changed."""
    root = Path(root)
    files, skipped = scan_files(root, should_stop)
    captions, problems = read_captions(root, [p for p, _ in files])
    skipped += problems
    images = []
    for path, stat in files:
        if path.name in METADATA_FILES:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append((path, stat))
        else:
            skipped.append((path.relative_to(root).as_posix(), "not an image file"))
    rel = [p.relative_to(root) for p, _ in images]
    labelled = bool(rel) and all(len(r.parts) > 1 for r in rel)
    class_names = sorted({r.parts[0] for r in rel}) if labelled else []
    records = []
    for (path, stat), r in zip(images, rel):
        label = class_names.index(r.parts[0]) if labelled else -1
        caption = captions.get(r.as_posix(), captions.get(r.name, ""))
        records.append(Record(path, label, caption, r.as_posix(), f"{r.as_posix()}:{stat.st_size}:{stat.st_mtime_ns}"))
    return Source(records, class_names, skipped)
