"""Word when a run ends: a JSON POST to a webhook (notify.webhook, else $PIPELINES_WEBHOOK).

Sent when a run completes, fails, is stopped or is interrupted (Ctrl-C; a process killed with -9 sends nothing).
The standard library's urllib, bounded in wall time (a server that answers one byte every few seconds never times
out a single read): a dead or slow webhook is logged and never fails or holds the run.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request

ENV_VAR = "PIPELINES_WEBHOOK"
TIMEOUT_SECONDS = 5.0  # each connect and read
WALL_SECONDS = 10.0  # the whole POST: then it is given up (its thread, a daemon, ends with the process or the server)


def webhook_url(config) -> str | None:
    return config.notify.webhook or os.environ.get(ENV_VAR) or None


def shareable_config(config) -> dict:
    """The config as a dict with the webhook URL hidden (such URLs often hold a secret token): for model cards,
    which get pushed to the Hub, and trackers, which may be hosted."""
    raw = config.model_dump(mode="json")
    if raw.get("notify", {}).get("webhook"):
        raw["notify"]["webhook"] = "(set; not shown)"
    return raw


def run_payload(store, run_name: str, reason: str | None = None) -> dict:
    """What the webhook gets: the run, how it ended, how long it took, its best score and its latest sample grid."""
    row = store.get_run(run_name)
    grids = store.artifacts(run_name, "samples")
    started, ended = row["started_at"], row["ended_at"] or time.time()
    return {
        "event": "run_ended",
        "run": row["name"],
        "family": row["family"],
        "dataset": row["dataset"],
        "status": row["status"],
        "reason": reason or row["error"] or "",
        "duration_seconds": round(ended - started, 1) if started else None,
        "step": row["step"],
        "epoch": row["epoch"],
        "best_metric": {"name": row["best_metric"], "value": row["best_value"]} if row["best_metric"] else None,
        "sample_grid": grids[-1]["path"] if grids else None,
        "folder": row["folder"],
    }


def post_json(url: str, payload: dict, timeout: float = TIMEOUT_SECONDS, wall: float = WALL_SECONDS) -> int:
    """POST `payload` as JSON; the HTTP status. Raises on network errors and error statuses, and TimeoutError when the
    whole exchange takes longer than `wall` seconds."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "pipelines-studio"})
    outcome: dict = {}

    def send() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # the scheme is checked: http or https
                response.read(65536)  # the answer too, within the wall time
                outcome["status"] = response.status
        except BaseException as exc:  # noqa: BLE001  handed to the caller
            outcome["error"] = exc

    sender = threading.Thread(target=send, name="webhook", daemon=True)
    sender.start()
    sender.join(wall)
    if sender.is_alive():
        raise TimeoutError(f"no complete answer within {wall:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def run_ended(store, run_name: str, config, log: logging.Logger, reason: str | None = None) -> bool:
    """Tell the webhook, if there is one, how the run ended. Never raises: True when it was told."""
    try:
        url = webhook_url(config)
        if not url:
            return False
        if not url.startswith(("http://", "https://")):
            log.warning("webhook %s not notified: only http:// and https:// URLs are used", ENV_VAR)
            return False
        status = post_json(url, run_payload(store, run_name, reason))
        log.info("webhook notified (HTTP %d)", status)
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:  # HTTPError is a URLError; timeouts are OSErrors
        log.warning("webhook not notified: %s: %s (the run is not affected)", type(exc).__name__, exc)
    except Exception as exc:  # noqa: BLE001  whatever goes wrong here must not turn a finished run into a failure
        log.warning("webhook not notified: %s: %s (the run is not affected)", type(exc).__name__, exc)
    return False
