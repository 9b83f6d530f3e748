"""Result folders under <workspace>/exports (upscaled images, comparisons, interpolations, chains), of which
only the newest few of each kind are kept: they can be hundreds of megabytes each."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

KEEP = 20  # folders kept per kind


def prune(folder: Path, pattern: str, keep: int = KEEP) -> None:
    """Delete all but the newest `keep` folders matching `pattern`."""
    found = sorted((p for p in folder.glob(pattern) if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in found[:-keep] if keep else found:
        shutil.rmtree(old, ignore_errors=True)


def new_folder(workspace: Path, kind: str) -> Path:
    """A fresh <workspace>/exports/<kind>-*/ folder, after pruning the older ones of that kind."""
    exports = Path(workspace) / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    prune(exports, f"{kind}-*")
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=exports))


def served(value):
    """A result path (or a list of them) as Gradio FileData: Gradio copies it into its cache and answers with a URL,
    so a client on another machine can download it (gradio_client does so itself). A bare path answers 403."""
    if isinstance(value, (list, tuple)):
        return [served(v) for v in value]
    from gradio.data_classes import FileData

    return None if value is None else FileData(path=str(value), orig_name=Path(value).name).model_dump()
