"""What every dataset kind produces before preprocessing: records of an image (or a file), a label, a caption."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image


@dataclass
class Record:
    image: Image.Image | Path  # a path is opened (and may turn out corrupt) during preprocessing
    label: int = -1
    caption: str = ""
    name: str = ""


@dataclass
class Source:
    records: list[Record]
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
