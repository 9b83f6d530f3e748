"""Keep Gradio's file route out of the workspace.

The page never links to a workspace file: what a handler returns (sample grids, plots, exports, upload results) is
copied by Gradio into its cache and served from there. The workspace stays in `allowed_paths` only so that those
copies may be made; a direct `/file=<workspace>/...` request is refused here before anything opens the file. That
matters beyond secrets (a run's config.yaml may hold a webhook token): a process that opens and closes the SQLite
store through another file handle drops its POSIX locks on it, and the app's store reads then failed with
"database disk image is malformed" until a restart.
"""
from __future__ import annotations

import os
from pathlib import Path

from pipelines.store import RunStore

FILE_ROUTE = "/file="
STORE_FILES = [RunStore.FILENAME + suffix for suffix in ("", "-wal", "-shm", "-journal")]


def blocked_paths(workspace: str | Path) -> list[str]:
    """The store's files, for Gradio's own blocklist (nothing returned by a handler may copy them either)."""
    return [str(Path(workspace).resolve() / name) for name in STORE_FILES]


def refuse_store_files(paths, workspace: str | Path) -> None:
    """Raise ValueError for a path (of an image or a model a client names) to the run store: the app never opens it
    but through SQLite."""
    store = {os.path.realpath(p) for p in blocked_paths(workspace)}
    for path in paths:
        if path and os.path.realpath(str(path)) in store:
            raise ValueError(f"{path}: the run store is not an image or a model; refused")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class WorkspaceFiles:
    """ASGI middleware: a file-route request for a path inside the workspace gets 403, unless the path is in Gradio's
    own cache (which may be set inside it)."""

    def __init__(self, app, workspace: str | Path, cache: str | Path | None = None):
        self.app = app
        self.roots = {os.path.abspath(workspace), os.path.realpath(workspace)}
        self.cache = {os.path.abspath(cache), os.path.realpath(cache)} if cache else set()

    def refused(self, route_path: str) -> bool:
        index = route_path.find(FILE_ROUTE)
        if index < 0:
            return False
        target = route_path[index + len(FILE_ROUTE):]
        if target.startswith(("http://", "https://")):
            return False
        real = os.path.realpath(target)  # a link into the workspace counts as the workspace
        if any(_inside(real, cache) for cache in self.cache):  # Gradio's copies
            return False
        return any(_inside(c, root) for c in (os.path.abspath(target), real) for root in self.roots)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.refused(scope.get("path", "")):
            return await self.app(scope, receive, send)
        body = (b"403 Forbidden: files of the workspace are not served directly; the page gets copies of the results "
                b"it shows\n")
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
