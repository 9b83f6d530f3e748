"""What the ecosystem tests share: a webhook receiver on 127.0.0.1, and one tiny run trained with the TensorBoard
tracker, evaluations (so that its cards carry metrics) and that webhook."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.conftest import tiny_config

EVAL = {"every_epochs": 1, "num_samples": 24, "steps": 2, "final": True, "final_split": "val", "final_num_samples": 16}


class Webhook:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="session")
def tracked_run(tmp_path_factory):
    """(workspace, run folder, store row, webhook payloads) of a 2-epoch run with tensorboard, evaluations and a webhook."""
    from pipelines.train.run import train

    hook = Webhook()
    try:
        ws = tmp_path_factory.mktemp("tracked")
        config = tiny_config(training={"epochs": 2, "log_with": ["tensorboard"]}, evaluation=EVAL,
                             notify={"webhook": hook.url})
        row = train(config, ws, progress=False)
    finally:
        hook.close()
    return ws, Path(row["folder"]), row, hook.received


class TrickleWebhook:
    """A webhook that reads the request and then answers one byte at a time, without end: no single read times
    out, so only a bound on the whole exchange ends the POST. `requests` counts the POSTs it got."""

    def __init__(self, every: float = 0.5):
        import socket

        self.requests, self.closed = 0, threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.every = every
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        with conn:
            conn.recv(65536)
            self.requests += 1
            answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 10**6
            for byte in answer:
                if self.closed.wait(self.every):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self):
        self.closed.set()
        self.sock.close()


@pytest.fixture
def trickle_webhook():
    hook = TrickleWebhook()
    yield hook
    hook.close()
