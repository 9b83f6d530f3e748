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
import stat
import zipfile
from pathlib import Path, PurePosixPath

from pipelines.api import IMAGE_SUFFIXES

MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_MEMBERS = 200_000
MAX_RATIO = 200  # images barely compress; a member that shrinks 200x is a bomb, not a photo
# The whole archive: photos and PNGs barely shrink, so many members each just under the per-member check (2,001
# of 1 MiB zeros: a 2.25 MB zip that wrote 2.0 GB) are caught by the ratio of the total to the zip's own size.
MAX_TOTAL_RATIO = 20
SMALL_ARCHIVE_BYTES = 64 * 1024**2  # any zip may unpack to this much (flat synthetic images do compress well)


class UploadError(ValueError):
    pass


def unpack_limit(zip_size: int, max_bytes: int = MAX_UNPACKED_BYTES) -> int:
    """The most a zip of `zip_size` bytes may unpack to."""
    return min(max_bytes, max(SMALL_ARCHIVE_BYTES, MAX_TOTAL_RATIO * zip_size))


def check_members(name: str, members: list[zipfile.ZipInfo], limit: int) -> None:
    """Refuse, before anything is written, a zip whose members escape, are links, would not fit (a file and a folder
    of one name), are too many, or unpack to more than `limit` bytes in all."""
    if len(members) > MAX_MEMBERS:
        raise UploadError(f"{name} holds {len(members):,} files; the limit is {MAX_MEMBERS:,}")
    total, files, folders = 0, set(), set()
    for m in members:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or ".." in path.parts or m.filename.startswith(("/", "\\")) or not path.parts \
                or ":" in path.parts[0]:
            raise UploadError(f"{name}: {m.filename!r} points outside the folder; refused")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise UploadError(f"{name}: {m.filename!r} is a symbolic link; refused")
        (folders if m.is_dir() else files).add(path)
        folders.update(path.parents[:-1])  # every folder above it ('.' is the top)
        total += m.file_size
        if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024**2:
            raise UploadError(f"{name}: {m.filename!r} expands {m.file_size // m.compress_size}x; looks like a zip bomb, refused")
    both = files & folders
    if both:
        clash = min(both, key=str)
        raise UploadError(f"{name}: {str(clash)!r} is both a file and a folder in the zip; refused")
    if total > limit:
        raise UploadError(f"{name} would unpack to {total / 1024**2:,.0f} MB; the limit for this zip is "
                          f"{limit / 1024**2:,.0f} MB (images barely compress: is it a zip bomb?)")
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
