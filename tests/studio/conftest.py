import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, tiny_config


def sequential_client(url: str, **kwargs):
    """A gradio_client Client whose calls one after another do not race its event stream: a call made just after
    another can join the stream the server is closing and fail with CancelledError though the app did the work (seen
    on CI, also after a wait of a second on a busy machine). Each call, answered or refused, returns once the reader
    of that stream has ended, so the next one opens its own."""
    from concurrent.futures import wait

    from gradio_client import Client

    class SequentialClient(Client):
        def predict(self, *args, **kwargs):
            try:
                return super().predict(*args, **kwargs)
            finally:
                reader = self.streaming_future
                if reader is not None:
                    wait([reader], timeout=120)  # the server closes the stream once the call is answered

    # httpx's 5-second default read timeout failed a call's POST on a loaded machine
    return SequentialClient(url, **{"verbose": False, "httpx_kwargs": {"timeout": 120}, **kwargs})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py` in a subprocess on a free port."""

    def __init__(self, workspace, *args):
        self.workspace = workspace
        for _ in range(3):  # the free port may be taken by another process before the app binds it: take another
            output = self.start(*args)
            if output is None:
                return
            if "Cannot find empty port" not in output and "already in use" not in output:
                break
        raise RuntimeError(f"app exited: {output}")

    def start(self, *args) -> str | None:
        """Start the app on a free port; None once it serves its page, else what it printed before it exited."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.gradio_tmp = Path(self.workspace).parent / f"gradio-tmp-{self.port}"
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), "--workspace", str(self.workspace),
                                      *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False",
                                          "GRADIO_TEMP_DIR": str(self.gradio_tmp)})
        deadline = time.time() + 300  # generous: a busy machine imports Gradio slowly
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return self.proc.stdout.read()
            try:
                answered = httpx.get(self.url, timeout=2).status_code == 200
            except httpx.HTTPError:
                answered = False
            if answered and self.proc.poll() is None:  # our app answered, not another process on that port
                return None
            time.sleep(0.3)
        raise RuntimeError("app did not start within 300 s")

    def client(self):
        return sequential_client(self.url)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def launch(tmp_path):
    apps = []

    def start(*args, workspace=None):
        app = App(workspace or tmp_path / "ws", *args)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.close()


def tiny_yaml(**training) -> str:
    return yaml.safe_dump(tiny_config(training={"epochs": 2, **training}).model_dump(mode="json"))


def fill_form(page, values: dict[str, str]) -> None:
    """Type each value into the Train tab's field of that name (`data-image-size`), leaving it as a person does."""
    for field, value in values.items():
        box = page.locator(f"#field-{field} input")
        box.fill(value)
        box.press("Tab")


def wait_for(predicate, timeout=900, every=0.3, what="condition"):
    """Until `predicate` holds. The limit is generous: on a loaded machine runs train many times slower; a wait that
    can fail sooner (a run that failed) says so in the predicate. `what` may be a function, for a message that says
    what was seen instead."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def wait_for_status(read_row, *statuses, timeout=900, what=None):
    """The run's row once its status is one of `statuses`; fails at once, with the run's error, when it ends otherwise."""
    def reached():
        row = read_row()
        if row["status"] in statuses:
            return row
        assert row["status"] in ("queued", "running"), f"run {row['name']} is {row['status']}: {row.get('error')}"
        return None

    return wait_for(reached, timeout, what=what or f"status {' or '.join(statuses)}")
