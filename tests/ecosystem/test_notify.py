"""Webhooks: a JSON POST when a run completes or fails; a dead webhook is logged and never fails the run."""
import socket
from pathlib import Path

import pytest

from pipelines.config import ConfigError
from pipelines.ecosystem import notify, trackers
from pipelines.train.run import train
from tests.conftest import tiny_config


def test_webhook_gets_the_completed_run(tracked_run):
    _, folder, row, received = tracked_run
    [payload] = received
    assert payload["run"] == row["name"] and payload["family"] == "ddpm" and payload["status"] == "completed"
    assert payload["reason"] == "all epochs done" and payload["duration_seconds"] > 0
    assert payload["best_metric"]["name"].startswith("FD (digits-cnn") and payload["best_metric"]["value"] > 0
    assert Path(payload["sample_grid"]) == folder / "samples" / "epoch_2.png"


def test_webhook_gets_a_failed_run_from_the_environment(webhook, monkeypatch, tmp_path):
    monkeypatch.setenv(notify.ENV_VAR, webhook.url)
    monkeypatch.setitem(trackers.PACKAGES, "mlflow", (("no_such_module_for_mlflow",), "mlflow"))
    with pytest.raises(ConfigError):  # fails at the start, before any training
        train(tiny_config(training={"log_with": ["mlflow"]}), tmp_path, progress=False)
    [payload] = webhook.received
    assert payload["status"] == "failed" and "pip install mlflow" in payload["reason"]


def test_a_dead_webhook_does_not_fail_the_run(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tiny_config(training={"epochs": 1}, notify={"webhook": f"http://127.0.0.1:{port}/hook"})
    row = train(config, tmp_path, progress=False)
    assert row["status"] == "completed"
    assert "webhook not notified: URLError" in (Path(row["folder"]) / "log.txt").read_text()


def test_a_webhook_that_answers_a_byte_at_a_time_is_given_up_as_a_whole(trickle_webhook, tmp_path):
    """Probe: a server sending one byte every 3 s kept the finished run's process alive 126 s (each read was quick)."""
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        notify.post_json(trickle_webhook.url, {"event": "run_ended"}, wall=1)
    assert trickle_webhook.requests == 1

    config = tiny_config(training={"epochs": 1}, notify={"webhook": trickle_webhook.url})
    row = train(config, tmp_path, progress=False)  # returns: the POST is bounded (10 s), the run is not failed by it
    assert row["status"] == "completed"
    log = (Path(row["folder"]) / "log.txt").read_text()
    assert "webhook not notified: TimeoutError: no complete answer within 10 s (the run is not affected)" in log
