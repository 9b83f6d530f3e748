"""Runs train in child processes of the app: what a user sees when one is killed, stopped or resumed."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from pipelines.store import RunStore, run_seconds
from studio.runs import RunManager
from tests.conftest import ROOT
from tests.ecosystem.conftest import Webhook
from tests.studio.conftest import tiny_yaml, wait_for, wait_for_status


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[1])


def test_a_run_trains_in_its_own_process_and_a_killed_one_says_why(launch):
    hook = Webhook()
    app = launch("--webhook", hook.url)
    client = app.client()
    name = client.predict(tiny_yaml(epochs=5000, checkpoint_every_epochs=1), api_name="/start")["name"]
    store = RunStore(app.workspace)
    row = wait_for(lambda: (r := store.get_run(name))["step"] >= 6 and r, what="training steps")
    pid = row["pid"]
    assert pid != app.proc.pid and parent_of(pid) == app.proc.pid
    environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    assert environ["OMP_NUM_THREADS"] == str(max(1, len(os.sched_getaffinity(0)) - 1))  # one run at a time: a core for the app
    # A script polls with plain HTTP, metrics since the last step it has.
    poll = lambda endpoint, *data: httpx.post(f"{app.url}gradio_api/run/{endpoint}", json={"data": list(data)}).json()["data"][0]
    assert [r["status"] for r in poll("list_runs") if r["name"] == name] == ["running"]
    everything = poll("run_metrics", name, -1)["loss"]
    since = poll("run_metrics", name, 3)["loss"]
    assert [s for s, _ in everything[:4]] == [1, 2, 3, 4] and since[:len(everything) - 3] == everything[3:]

    os.kill(pid, signal.SIGKILL)  # as the kernel does when memory runs out
    row = wait_for_status(lambda: next(r for r in client.predict(api_name="/list_runs") if r["name"] == name),
                          "interrupted", "failed")
    assert row["status"] == "interrupted" and f"(pid {pid}) was killed by signal 9 (SIGKILL)" in row["error"]
    log = (Path(row["folder"]) / "log.txt").read_text()
    assert "studio: " in log and "INFO step 1 " in log and "killed by signal 9" in log  # the child's output and the cause
    # The child could not post its webhook: the app did, with the cause.
    payload = wait_for(lambda: hook.received and hook.received[-1], timeout=60, what="the webhook")
    hook.close()
    assert payload["run"] == name and payload["status"] == "interrupted" and "signal 9" in payload["reason"]

    assert "queued to resume" in client.predict(name, api_name="/resume")
    wait_for(lambda: (r := store.get_run(name))["status"] == "running" and r["pid"] not in (None, pid), what="a new process")
    client.predict(name, api_name="/stop")
    row = wait_for_status(lambda: store.get_run(name), "stopped")
    assert row["error"] is None and "resumed from checkpoint-" in (Path(row["folder"]) / "log.txt").read_text()


def test_a_run_that_does_not_stop_in_time_is_killed(tmp_path):
    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws", stop_grace=0)
    name = manager.start(tiny_config(training={"epochs": 5000}))
    wait_for(lambda: manager.store.get_run(name)["step"] >= 1, what="a first step")
    # Paused, the child cannot honour the stop (a tiny run on an idle machine did so within the 0.2 s poll, seen on CI)
    os.killpg(manager.store.get_run(name)["pid"], signal.SIGSTOP)
    assert manager.stop(name).endswith("stopping after the current step")
    row = wait_for_status(lambda: manager.store.get_run(name), "interrupted", "stopped")
    assert row["status"] == "interrupted" and "did not stop within 0 s of the stop request" in row["error"]
    # A child that fails before it can record why (its config broken on disk): the exit code and its last words.
    config = Path(row["folder"]) / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 5000", "epochs: -1"))
    manager.resume(name)
    row = wait_for_status(lambda: manager.store.get_run(name), "failed")
    assert "exited with code 2" in row["error"] and "training.epochs" in row["error"]


def test_a_completed_run_is_continued_only_for_the_minutes_asked_and_keeps_its_time(tmp_path):
    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws")
    name = manager.start(tiny_config(training={"epochs": 2}))
    row = wait_for_status(lambda: manager.store.get_run(name), "completed")
    first = run_seconds(row)
    # Resumed as it is, it would silently get a whole new budget: it asks how many more minutes instead.
    for asked in (None, 0, float("inf")):
        with pytest.raises(ValueError, match="continue it for a number of minutes"):
            manager.resume(name, more_minutes=asked)
    assert manager.store.get_run(name)["status"] == "completed"  # nothing was queued
    assert manager.resume(name, more_minutes=0.25) == f"{name}: queued to continue for 0.25 more minutes"
    wait_for(lambda: manager.store.get_run(name)["status"] != "completed", what="the run to be queued")
    row = wait_for_status(lambda: manager.store.get_run(name), "completed")
    training = yaml.safe_load(row["config"])["training"]
    assert training["max_minutes"] == 0.25 and training["epochs"] == 4  # its 2 epochs were done: 2 more, in the budget
    assert row["epoch"] > 2 and "resumed from checkpoint-" in (Path(row["folder"]) / "log.txt").read_text()
    # The run's time is both starts' (not the idle time between them, not only the second start's)
    assert row["earlier_seconds"] == pytest.approx(first, abs=0.01)
    assert run_seconds(row) == pytest.approx(first + row["ended_at"] - row["started_at"], abs=0.01)


def test_a_run_configured_for_two_processes_is_launched_with_accelerate(tmp_path):
    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws")
    name = manager.start(tiny_config(training={"epochs": 2, "num_processes": 2}))
    row = wait_for_status(lambda: manager.store.get_run(name), "completed")
    assert row["total_steps"] == 4  # 86 images over 2 processes: 2 steps of 16 an epoch on each
    assert "accelerate launch --multi_gpu --num_processes 2" in (Path(row["folder"]) / "log.txt").read_text()


def test_a_run_killed_from_a_terminal_is_interrupted_for_the_next_reader(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_yaml(epochs=5000))
    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "train", "--config", str(config), "--workspace", str(ws),
                             "--name", "terminal", "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The store's file exists a moment before the run's row is in it.
        wait_for(lambda: ws.joinpath("runs.sqlite").exists() and RunStore(ws).exists("terminal")
                 and RunStore(ws).get_run("terminal")["step"] >= 2, what="training steps")
    finally:
        proc.kill()  # kill -9
        proc.wait()
    row = RunStore(ws).get_run("terminal")  # a fresh reader (the command line's, say), no app involved
    assert row["status"] == "interrupted" and "ended without finishing" in row["error"]
    assert [r["status"] for r in RunStore(ws).list_runs()] == ["interrupted"]


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path):
    store = RunStore(tmp_path)
    store.create_run("r", "ddpm", "digits", 8, "", str(tmp_path / "r"))
    store.update_run("r", status="running", pid=os.getpid())  # this process: alive
    assert store.get_run("r")["status"] == "running"
    store.update_run("r", pid_start=store.get_run("r")["pid_start"] - 1)  # same pid, another process: the run's died
    assert store.get_run("r")["status"] == "interrupted"


def test_a_queued_run_is_deleted_and_a_running_one_only_when_asked_to_stop_first(tmp_path):
    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws")
    running = manager.start(tiny_config(training={"epochs": 5000}))
    queued = manager.start(tiny_config(training={"epochs": 5000}))
    wait_for(lambda: manager.store.get_run(running)["step"] >= 1, what="a first step")
    assert manager.store.get_run(queued)["status"] == "queued"
    folder = Path(manager.store.get_run(queued)["folder"])
    assert manager.delete(queued) == f"deleted {queued}"
    assert not manager.store.exists(queued) and not folder.exists()
    with pytest.raises(ValueError, match="is running: stop it before deleting it"):
        manager.delete(running)
    assert "stopping; it is deleted once its process has ended" in manager.delete(running, stop_running=True)
    wait_for(lambda: not manager.store.exists(running), what="the stopped run to be deleted")
    assert not (tmp_path / "ws" / running).exists()


def test_a_webhook_that_answers_a_byte_at_a_time_holds_no_queued_run(tmp_path, monkeypatch):
    """Probe: a server sending one byte every 3 s kept each finished run's process alive for minutes, and the next
    queued run started that much later (after a normal end, and after kill -9, when the app posts)."""
    from pipelines.ecosystem import notify
    from tests.conftest import tiny_config
    from tests.ecosystem.conftest import TrickleWebhook

    hook = TrickleWebhook()
    monkeypatch.setenv(notify.ENV_VAR, hook.url)
    try:
        manager = RunManager(tmp_path / "ws")
        ended = manager.start(tiny_config(training={"epochs": 1}))
        killed = manager.start(tiny_config(training={"epochs": 5000}))
        last = manager.start(tiny_config(training={"epochs": 1}))
        pid = wait_for(lambda: (r := manager.store.get_run(killed))["step"] >= 1 and r["pid"], what="the second run")
        assert manager.store.get_run(ended)["status"] == "completed"
        os.kill(pid, signal.SIGKILL)
        wait_for_status(lambda: manager.store.get_run(last), "completed")  # the webhook never finishes answering
        first_log = Path(manager.store.get_run(ended)["folder"]) / "log.txt"  # its process gave up on the POST itself
        wait_for(lambda: "no complete answer within 10 s" in first_log.read_text(), what="the first run's webhook note")
        assert manager.store.get_run(killed)["status"] == "interrupted"
        wait_for(lambda: hook.requests >= 3, what="the app's post for the killed run")
    finally:
        hook.close()


def test_a_store_error_as_a_run_starts_fails_that_run_and_the_worker_goes_on(tmp_path, monkeypatch):
    """Probe: a run worker thread died on a store error, and queued runs never started."""
    import sqlite3

    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws")
    claim, failures = RunStore.transition, []

    def broken_once(store, name, before, after, **fields):
        if after == "running" and not failures:
            failures.append(name)
            raise sqlite3.DatabaseError("database disk image is malformed")
        return claim(store, name, before, after, **fields)

    monkeypatch.setattr(RunStore, "transition", broken_once)
    first = manager.start(tiny_config(training={"epochs": 1}))
    second = manager.start(tiny_config(training={"epochs": 1}))
    row = wait_for_status(lambda: manager.store.get_run(second), "completed")
    assert row["step"] > 0 and manager.workers[0].is_alive()
    failed = manager.store.get_run(first)
    assert failed["status"] == "failed" and "database disk image is malformed" in failed["error"]


def test_a_run_whose_dataset_cache_is_truncated_under_it_names_the_cache_and_resumes_on_a_rebuilt_one(tmp_path):
    """Probe: truncating images.u8 during training killed the run with SIGBUS, shown only as "ended without
    finishing"."""
    from tests.conftest import tiny_config

    manager = RunManager(tmp_path / "ws")
    name = manager.start(tiny_config(training={"epochs": 5000}))
    wait_for(lambda: (r := manager.store.get_run(name))["step"] >= 2 or r["status"] not in ("queued", "running"),
             what="training steps")
    [images] = (tmp_path / "ws" / "cache" / "datasets").glob("*/images.u8")
    with open(images, "r+b") as f:
        f.truncate(0)
    row = wait_for_status(lambda: manager.store.get_run(name), "failed")
    assert "killed by signal 7 (SIGBUS)" in row["error"] and "prepared dataset in" in row["error"]
    assert str(tmp_path / "ws" / "cache" / "datasets") in row["error"] and "resume the run" in row["error"]
    assert "Bus error" in (Path(row["folder"]) / "log.txt").read_text()  # where it happened, from faulthandler

    manager.resume(name)
    wait_for(lambda: (r := manager.store.get_run(name))["status"] == "running" and r["step"] >= 3, what="resumed steps")
    manager.stop(name)
    row = wait_for_status(lambda: manager.store.get_run(name), "stopped")
    assert "incomplete or damaged" in (Path(row["folder"]) / "log.txt").read_text()  # the cache was prepared again
