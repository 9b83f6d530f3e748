"""Uploaded zips of images, unpacked safely into the workspace.

Refused with a message: anything that is not a zip, members whose paths escape the folder (absolute,
'..', links), archives that would unpack to more than the limit or compress suspiciously well (zip bombs),
and zips without a single image. The upload size itself is limited by Gradio before anything is stored.
"""
from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from pipelines.data.transforms import IMAGE_SUFFIXES

MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_MEMBERS = 200_000
MAX_RATIO = 200  # images barely compress; a member that shrinks 200x is a bomb, not a photo


class UploadError(ValueError):
    pass


def unpack_images_zip(zip_path: str | Path, uploads_dir: str | Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    zip_path, uploads_dir = Path(zip_path), Path(uploads_dir)
    if not zipfile.is_zipfile(zip_path):
        raise UploadError(f"{zip_path.name} is not a zip file: upload a .zip of images (subfolders become classes)")
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise UploadError(f"{zip_path.name} holds {len(members)} files; the limit is {MAX_MEMBERS}")
        total = 0
        for m in members:
            name = PurePosixPath(m.filename)
            if name.is_absolute() or ".." in name.parts or m.filename.startswith(("/", "\\")) or ":" in name.parts[0]:
                raise UploadError(f"{zip_path.name}: {m.filename!r} points outside the folder; refused")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise UploadError(f"{zip_path.name}: {m.filename!r} is a symbolic link; refused")
            total += m.file_size
            if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024**2:
                raise UploadError(f"{zip_path.name}: {m.filename!r} expands {m.file_size // m.compress_size}x; looks like a zip bomb, refused")
        if total > max_bytes:
            raise UploadError(f"{zip_path.name} would unpack to {total / 1024**2:.0f} MB; the limit is {max_bytes / 1024**2:.0f} MB")
        if not any(PurePosixPath(m.filename).suffix.lower() in IMAGE_SUFFIXES for m in members if not m.is_dir()):
            raise UploadError(f"{zip_path.name} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", zip_path.stem).strip("._") or "upload"
        target = uploads_dir / stem
        n = 1
        while target.exists():
            n += 1
            target = uploads_dir / f"{stem}_{n}"
        tmp = uploads_dir / f".tmp-{target.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        written = 0
        try:
            for m in members:
                if m.is_dir():
                    continue
                dest = tmp / PurePosixPath(m.filename)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:  # sizes in the header can lie
                            raise UploadError(f"{zip_path.name} unpacks to more than {max_bytes / 1024**2:.0f} MB; refused")
                        out.write(chunk)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(target)
    # A zip of one top folder: the images are in it (its subfolders are the classes).
    entries = [p for p in target.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target
