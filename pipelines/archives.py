"""Limits on zips from outside (uploaded image folders, imported runs), checked from the zip's directory before
anything is written: members whose paths escape the folder (absolute, '..', a drive) or are links, a name that is
both a file and a folder, too many members, and zips that would unpack to more than their limit or compress
suspiciously well, member by member or in all (zip bombs). Sizes in a zip's directory can lie: unpack with
`copy_member`, which counts what is really written."""
from __future__ import annotations

import stat
import zipfile
from pathlib import PurePosixPath

MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_MEMBERS = 200_000
MAX_RATIO = 200  # images and weights barely compress; a member that shrinks 200x is a bomb, not a photo
# The whole archive: photos and PNGs barely shrink, so many members each just under the per-member check (2,001
# of 1 MiB zeros: a 2.25 MB zip that wrote 2.0 GB) are caught by the ratio of the total to the zip's own size.
MAX_TOTAL_RATIO = 20
SMALL_ARCHIVE_BYTES = 64 * 1024**2  # any zip may unpack to this much (flat synthetic images do compress well)


class ArchiveError(ValueError):
    """A zip refused; the message says why."""


def unpack_limit(zip_size: int, max_bytes: int = MAX_UNPACKED_BYTES) -> int:
    """The most a zip of `zip_size` bytes may unpack to."""
    return min(max_bytes, max(SMALL_ARCHIVE_BYTES, MAX_TOTAL_RATIO * zip_size))


def check_members(name: str, members: list[zipfile.ZipInfo], limit: int, max_members: int = MAX_MEMBERS,
                  error: type[Exception] = ArchiveError) -> set[PurePosixPath]:
    """Refuse (raising `error`), before anything is written, a zip whose members escape, are links, would not fit (a
    file and a folder of one name), are more than `max_members`, or unpack to more than `limit` bytes in all. Returns
    the files' paths."""
    if len(members) > max_members:
        raise error(f"{name} holds {len(members):,} files; the limit is {max_members:,}")
    total, files, folders = 0, set(), set()
    for m in members:
        path = PurePosixPath(m.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or m.filename.startswith(("/", "\\")) or not path.parts \
                or ":" in path.parts[0]:
            raise error(f"{name}: {m.filename!r} points outside the folder; refused")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise error(f"{name}: {m.filename!r} is a symbolic link; refused")
        (folders if m.is_dir() else files).add(path)
        folders.update(path.parents[:-1])  # every folder above it ('.' is the top)
        total += m.file_size
        if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024**2:
            raise error(f"{name}: {m.filename!r} expands {m.file_size // m.compress_size}x; looks like a zip bomb, refused")
    both = files & folders
    if both:
        clash = min(both, key=str)
        raise error(f"{name}: {str(clash)!r} is both a file and a folder in the zip; refused")
    if total > limit:
        raise error(f"{name} would unpack to {total / 1024**2:,.0f} MB; the limit for this zip is "
                    f"{limit / 1024**2:,.0f} MB (images barely compress: is it a zip bomb?)")
    return files


def copy_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, out, written: int, limit: int, name: str,
                error: type[Exception] = ArchiveError) -> int:
    """Write `member` to the open file `out`, raising `error` once the zip's total (`written` before it) passes `limit`
    bytes; returns the new total."""
    with zf.open(member) as src:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > limit:  # sizes in the directory can lie
                raise error(f"{name} unpacks to more than {limit / 1024**2:.0f} MB; refused")
            out.write(chunk)
    return written
