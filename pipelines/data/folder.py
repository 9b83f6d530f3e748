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


def scan_files(root: Path, should_stop=None) -> tuple[list[tuple[str, str, os.stat_result]], list[tuple[str, str]]]:
    """Every file under root (symlinks followed, hidden names left out) as (path relative to root, full path, stat),
    sorted by path; folders that cannot be read and symlink loops are returned as problems, not silently dropped.
    Paths stay strings: a folder of 100,000 images is scanned on every run, and pathlib objects cost seconds there."""
    files, problems, seen = [], [], set()
    stack = [(str(root), "")]
    while stack:
        if should_stop is not None and should_stop():
            raise StopRequested("stopped while scanning the folder")
        folder, rel = stack.pop()
        try:
            real = os.stat(folder)
            if (real.st_dev, real.st_ino) in seen:
                problems.append((rel or ".", "symlink loop: this folder was already scanned"))
                continue
            seen.add((real.st_dev, real.st_ino))
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append((rel or ".", f"folder not readable: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir():  # follows symlinks
                    stack.append((entry.path, name))
                elif entry.is_file():
                    files.append((name, entry.path, entry.stat()))
            except OSError as exc:
                problems.append((name, f"not readable: {exc.strerror or exc}"))
    files.sort(key=lambda f: f[0].split("/"))
    return files, problems


def image_folder(root: str | Path, should_stop=None) -> Source:
    """Records of a folder's images; each record's identity (path, size, modification time) tells the
    prepared-dataset cache whether it changed."""
    root = Path(root)
    files, skipped = scan_files(root, should_stop)
    captions, problems = read_captions(root, [Path(full) for rel, full, _ in files if rel.rsplit("/", 1)[-1] in METADATA_FILES])
    skipped += problems
    images = []
    for rel, full, stat in files:
        name = rel.rsplit("/", 1)[-1]
        if name in METADATA_FILES:
            continue
        suffix = name[name.rfind("."):].lower() if "." in name else ""
        if suffix in IMAGE_SUFFIXES:
            images.append((rel, full, stat))
        else:
            skipped.append((rel, "not an image file"))
    labelled = bool(images) and all("/" in rel for rel, _, _ in images)
    class_names = sorted({rel.split("/", 1)[0] for rel, _, _ in images}) if labelled else []
    index = {name: k for k, name in enumerate(class_names)}
    records = []
    for rel, full, stat in images:
        label = index[rel.split("/", 1)[0]] if labelled else -1
        caption = captions.get(rel, captions.get(rel.rsplit("/", 1)[-1], ""))
        records.append(Record(full, label, caption, rel, f"{rel}:{stat.st_size}:{stat.st_mtime_ns}"))
    return Source(records, class_names, skipped)
