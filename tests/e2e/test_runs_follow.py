"""The Runs tab in headless Chromium, as a person finds it: it opens on the running run, shows only the actions that
apply, draws the loss on a real log axis when asked, follows a duplicated run, names each grid's epoch and step, and a
sweep of one-evaluation runs draws one dot per run.

The charts are read from what their Vega views draw (axis and tick labels, each point's description), not pixels.
"""
import re

import yaml

from pipelines.store import RunStore
from tests.conftest import tiny_config
from tests.studio.conftest import tiny_yaml, wait_for, wait_for_status
from tests.test_cli import run_cli
from tests.test_sweep import TINY_EVAL

pytest_plugins = ["tests.studio.conftest"]

SWEEP = "ddpm-digits-8-sweep"
RUNS = ["ddpm-digits-8-lr1e-3", "ddpm-digits-8-lr3e-3"]
ACTIONS = ("stop-run", "resume-run", "continue-run", "delete-run")


def aria(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")


def texts(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("els => els.map(e => e.textContent)")


def shown_actions(page) -> set[str]:
    return {a for a in ACTIONS if page.locator(f"#{a}").is_visible()}


def test_the_runs_tab_follows_the_running_run_and_a_sweep_of_one_evaluation_runs_shows_a_dot_each(launch, browser_page,
                                                                                                   shoot, tmp_path):
    ws = tmp_path / "ws"
    # A sweep of two tiny runs from the command line, one evaluation each (1 epoch), as short sweep runs have.
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(training={"epochs": 1}, evaluation=TINY_EVAL).model_dump(mode="json")))
    done = run_cli("train", "--config", config, "--workspace", ws, "--quiet",
                   "--sweep", "training.learning_rate=1e-3,3e-3")
    assert done.returncode == 0, done.stderr
    store = RunStore(ws)
    assert store.sweep_runs(SWEEP) == RUNS and all(len(store.evaluations(r)) == 1 for r in RUNS)

    app = launch(workspace=ws)
    client = app.client()
    running = client.predict(tiny_yaml(epochs=5000), api_name="/start")["name"]
    wait_for_status(lambda: store.get_run(running), "running")
    page = browser_page
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(app.url)
    page.get_by_role("tab", name="Runs").click()

    # It opens on the running run (the newest is the same here; the sweep's runs are older), with Stop and Delete only.
    picker = page.locator("#run-picker input")
    wait_for(lambda: picker.input_value() == running, timeout=120, what="the picker on the running run")
    wait_for(lambda: 'data-status="running"' in page.locator("#run-progress").inner_html(), timeout=120, what="its bar")
    wait_for(lambda: shown_actions(page) == {"stop-run", "delete-run"}, timeout=120, what="Stop and Delete only")

    # Log scale is off at first; on, the loss is drawn on a log axis whose ticks are the loss's own values.
    assert not page.locator("#log-scale input").is_checked()
    wait_for(lambda: page.locator("#loss-plot").is_visible(), timeout=120, what="the linear loss chart")
    page.locator("#log-scale input").check()
    log_axis = "#loss-log-plot [aria-label^='Y-axis']"
    wait_for(lambda: any("titled 'loss (log scale)' for a log scale" in a for a in aria(page, log_axis)),
             timeout=120, what="the loss on a log axis")
    assert not page.locator("#loss-plot").is_visible()
    ticks = [float(t) for t in texts(page, f"{log_axis} .role-axis-label text") if re.fullmatch(r"[\d.]+", t)]
    losses = [r["value"] for r in store.metrics(running, ["loss"])]
    assert ticks and min(ticks) > 0 and min(losses) / 10 < max(ticks) < max(losses) * 10  # the values, not log10 ones
    shoot(page, "follow-1-running-on-a-log-axis")
    assert client.predict(running, api_name="/stop").startswith(f"{running}: stopping")

    # A completed run of the sweep: Continue (for some minutes) and Delete only; its grid names its epoch and step.
    picker.click()
    page.get_by_role("option", name=RUNS[0], exact=True).click()
    wait_for(lambda: shown_actions(page) == {"continue-run", "delete-run"}, timeout=120,
             what="Continue and Delete only")
    assert page.locator("#more-minutes").is_visible()
    step = store.get_run(RUNS[0])["step"]
    wait_for(lambda: f"Sample grid 1 of 1: epoch 1, step {step}" in page.locator("#grid-pick").inner_text(),
             timeout=120, what="the grid slider naming the epoch and step")
    shoot(page, "follow-2-completed-run")

    # Duplicate: the picker follows the new run.
    page.get_by_role("button", name="Duplicate with edits").click()
    page.locator("#run-action").get_by_text(re.compile(r"Queued \S+")).wait_for()
    duplicated = re.search(r"Queued (\S+)", page.locator("#run-action").inner_text()).group(1)
    assert duplicated not in (RUNS[0], running) and store.exists(duplicated)
    wait_for(lambda: picker.input_value() == duplicated, timeout=120, what="the picker on the duplicated run")
    client.predict(duplicated, api_name="/stop")  # (it would train 80 epochs: the test needs none of them)

    # The sweep's overlay: one dot per run on its main metric, on numeric axes.
    page.get_by_role("button", name=re.compile(r"^Compare runs . sweeps")).click()
    page.locator("#sweep-picker input").click()
    page.get_by_role("option", name=SWEEP, exact=True).click()
    dots = "#sweep-metric-plot .mark-symbol path[aria-label^='step:']"
    wait_for(lambda: page.locator(dots).count() == 2, timeout=120, what="one dot per run on the main metric")
    assert {label.rpartition("run: ")[2] for label in aria(page, dots)} == {"lr=1e-3", "lr=3e-3"}
    axes = " ".join(aria(page, "#sweep-metric-plot [aria-label*='-axis titled']"))
    assert "X-axis titled 'step' for a linear scale" in axes and "Y-axis titled 'FD (hog-colour)" in axes
    page.locator("#sweep-metric-plot").scroll_into_view_if_needed()
    shoot(page, "follow-3-sweep-of-one-evaluation-runs")

    wait_for_status(lambda: store.get_run(running), "stopped")
    assert page.locator(".toast-body").count() == 0
    assert not [m for m in console if m.startswith("WARN") and "but the current version of Vega-Lite" not in m], console
