"""Answer only requests addressed to the studio by name: a guard against DNS rebinding.

A web page on attacker.example can make its own name resolve to 127.0.0.1 and then call the studio from the
browser (start runs, read files): the browser sees one origin, but the request still says Host: attacker.example.
Listening on this machine only, the studio answers just 127.0.0.1, localhost and [::1] at its port (or the
--host given); listening on every address (0.0.0.0, ::) any name is accepted, and the login guards it.
"""
from __future__ import annotations

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host header values to answer for a server on host:port; None when any is (every address)."""
    if host in ANY_ADDRESS:
        return None
    names = {*LOCAL_NAMES, f"[{host}]" if ":" in host else host}
    return {f"{name}:{port}" for name in names} | (names if port == 80 else set())


class HostCheck:
    """ASGI middleware: a request whose Host header is not an allowed one gets 421 and a short reason."""

    def __init__(self, app, allowed: set[str] | None):
        self.app, self.allowed = app, {h.lower() for h in allowed} if allowed is not None else None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self.allowed is None:
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "").lower()
        if host in self.allowed:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        body = (f"421 Misdirected Request: this studio answers only {', '.join(sorted(self.allowed))}, "
                f"not Host {host or '(none)'!r}\n").encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
