"""What every dataset kind produces before preprocessing: records of an image (or a file), a label, a caption."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image


@dataclass
class Record:
    image: Image.Image | Path | str  # a path is opened (and may turn out corrupt) during preprocessing
    label: int = -1
    caption: str = ""
    name: str = ""
    identity: str = ""  # what tells a changed source file from the one prepared before (path, size, mtime)


@dataclass
class Source:
    records: Sequence[Record]  # a list, or rows read on demand (a hub dataset)
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    key: dict = field(default_factory=dict)  # what the source is, for the prepared-dataset cache


class StopRequested(KeyboardInterrupt):
    """A person asked the run to stop while its data was being read or prepared (a run ends as stopped)."""


class Unavailable:
    """An image that could not be had (a URL that failed); decoding it raises BadImage with the reason."""

    def __init__(self, reason: str):
        self.reason = reason
