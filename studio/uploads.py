"""Uploaded zips of images, unpacked safely into the workspace.

Refused with a message: anything that is not a zip, members whose paths escape the folder (absolute,
'..', links), a name that is both a file and a folder, archives with too many members or that would unpack to
more than the limit or compress suspiciously well, member by member or in all (zip bombs), and zips without a
single image; all checked from the zip's directory before anything is written. The upload size itself is limited
by Gradio before anything is stored.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from pipelines.api import (
    IMAGE_SUFFIXES,
    MAX_MEMBERS,  # noqa: F401  (the limits, named here too)
    MAX_UNPACKED_BYTES,
    ArchiveError,
    check_archive_members,
    copy_member,
    unpack_limit,
)


class UploadError(ArchiveError):
    pass


def check_members(name: str, members: list[zipfile.ZipInfo], limit: int) -> None:
    """The zip limits (pipelines/archives.py), and at least one image."""
    files = check_archive_members(name, members, limit, error=UploadError)
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        raise UploadError(f"{name} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")


def unpack_images_zip(zip_path: str | Path, uploads_dir: str | Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    zip_path, uploads_dir = Path(zip_path), Path(uploads_dir)
    if not zipfile.is_zipfile(zip_path):
        raise UploadError(f"{zip_path.name} is not a zip file: upload a .zip of images (subfolders become classes)")
    max_bytes = unpack_limit(zip_path.stat().st_size, max_bytes)
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        check_members(zip_path.name, members, max_bytes)
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
                with open(dest, "wb") as out:
                    written = copy_member(zf, m, out, written, max_bytes, zip_path.name, error=UploadError)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(target)
    # A zip of one top folder: the images are in it (its subfolders are the classes).
    entries = [p for p in target.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target
