"""The Runs tab in headless Chromium: charts that follow the picked run, a run ended by its time budget, deleting.

The charts are read from what their Vega views draw (the legend's labels and each point's description), not pixels.
"""
import re
import time
import zipfile

import yaml

from pipelines.api import train
from pipelines.store import RunStore
from studio.tabs.runs import REFRESH_SECONDS
from tests.conftest import tiny_config
from tests.studio.conftest import tiny_yaml, wait_for, wait_for_status
from tests.train.test_gan import tiny_gan

pytest_plugins = ["tests.studio.conftest"]

QUICK_EVAL = {"every_epochs": 1, "steps": 4, "final": False}


def legend(page, plot: str) -> list[str]:
    return page.locator(f"#{plot} .role-legend-label text").evaluate_all("els => els.map(e => e.textContent)")


def series_drawn(page, plot: str) -> set[str]:
    """The series of the points the chart's Vega view holds ("step: 5; loss: 0.3; series: raw")."""
    labels = page.locator(f"#{plot} [aria-label^='step:']").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    return {label.rpartition("series: ")[2] for label in labels}


def shows(page, plot: str, series: list[str]) -> bool:
    return legend(page, plot) == series and series_drawn(page, plot) == set(series)


def pick(page, name: str) -> None:
    page.locator("#run-picker input").click()
    page.get_by_role("option", name=name, exact=True).click()


def test_charts_follow_the_picked_run_and_runs_are_deleted_as_asked(launch, browser_page, shoot, tmp_path):
    ws = tmp_path / "ws"
    # Made beforehand with the engine: a DDPM run ended by its time budget after one step (too short for an
    # evaluation), and a GAN run of 2 epochs.
    train(tiny_config(training={"epochs": 1000, "max_minutes": 0.0001}, evaluation={**QUICK_EVAL, "num_samples": 16}),
          ws, name="ddpm-budget", progress=False)
    train(tiny_gan(evaluation={**QUICK_EVAL, "num_samples": 24}), ws, name="gan", progress=False)
    app = launch(workspace=ws)
    page = browser_page
    console, dialogs = [], []
    page.on("console", lambda message: console.append(message.text))
    answer = {"accept": False}

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if answer["accept"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(app.url)
    page.get_by_role("tab", name="Runs").click()

    pick(page, "ddpm-budget")
    progress = page.locator("#run-progress .run-progress")
    wait_for(lambda: "ended: time budget (0.0001 min)" in progress.inner_text(), timeout=120, what="the budget's end")
    assert progress.get_attribute("data-fraction") == "1.0000"  # ended by its budget: 100%, not 1 step of 1000
    wait_for(lambda: shows(page, "loss-plot", ["raw", "smoothed (0.6)"]), timeout=120, what="the DDPM loss chart")
    # One logged step: drawn as points, said under the chart, axes around it (not a zero-width "1.000000" axis).
    assert page.locator("#loss-plot .mark-symbol.plot_marks").count() == 1
    assert "One value so far" in page.locator("#loss-plot").inner_text()
    ticks = page.locator("#loss-plot .role-axis-label text").evaluate_all("els => els.map(e => e.textContent)")
    assert ticks and not [t for t in ticks if re.search(r"\.\d{4}", t)], ticks
    # No evaluation fits in 6 ms: none ran, the chart says there is no data, and the log says why.
    wait_for(lambda: "no data yet" in page.locator("#fd-plot-empty").inner_text(), timeout=120, what="the DDPM's empty FD")
    assert "evaluations skipped: fewer than 16 samples fit" in page.get_by_label("Log (last 15 lines)").input_value()
    shoot(page, "runs-1-ddpm-ended-by-budget")

    pick(page, "gan")
    wait_for(lambda: shows(page, "loss-plot", ["d_loss", "d_loss smoothed (0.6)", "g_loss", "g_loss smoothed (0.6)"]),
             timeout=120, what="the GAN's losses")
    wait_for(lambda: shows(page, "lr-plot", ["lr", "d_lr"]), timeout=120, what="the GAN's learning rates")
    wait_for(lambda: shows(page, "fd-plot", ["FD (digits-cnn), 24 samples vs train"]), timeout=120, what="the GAN's FD")
    assert page.locator("#loss-plot .mark-line.plot_marks").count() == 4  # lines now, one per series
    assert "completed · ended: all 2 epochs done" in progress.inner_text()
    shoot(page, "runs-2-gan")
    # Its final model downloads as a zip (sent to the page once, not on every refresh; still there after a few)
    time.sleep(2 * REFRESH_SECONDS)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download final model (.zip of final/)").click()
    with zipfile.ZipFile(download.value.path()) as zipped:
        assert "studio.json" in zipped.namelist() and "README.md" in zipped.namelist(), zipped.namelist()

    pick(page, "ddpm-budget")  # and back: nothing of the GAN's legends stays
    wait_for(lambda: shows(page, "lr-plot", ["raw"]) and shows(page, "loss-plot", ["raw", "smoothed (0.6)"])
             and "no data yet" in page.locator("#fd-plot-empty").inner_text(), timeout=120, what="the DDPM's charts again")

    # Cancelling a delete changes nothing and says nothing.
    page.locator("#delete-run").click()
    wait_for(lambda: dialogs, timeout=60, what="the confirmation")
    assert dialogs[-1] == "Delete run ddpm-budget and all its files?"
    pick(page, "gan")  # (the next thing the page does completes after the cancelled one would have)
    wait_for(lambda: shows(page, "lr-plot", ["lr", "d_lr"]), timeout=120, what="the GAN again")
    assert RunStore(ws).exists("ddpm-budget")
    wait_for(lambda: page.locator("#run-action").inner_text().strip() == "", timeout=60, what="no message")

    # A queued run is deleted; a running one is stopped first, after a confirmation that says it is running.
    client = app.client()  # (one whose calls wait for its event stream to close: see sequential_client)
    running = client.predict(tiny_yaml(epochs=5000), api_name="/start")["name"]
    queued = client.predict(tiny_yaml(epochs=5000), api_name="/start")["name"]
    wait_for_status(lambda: RunStore(ws).get_run(running), "running")
    answer["accept"] = True
    wait_for(lambda: page.locator("#run-picker input").click() or page.get_by_role("option", name=queued, exact=True).count(),
             timeout=60, what="the queued run among the choices")
    page.get_by_role("option", name=queued, exact=True).click()
    wait_for(lambda: 'data-status="queued"' in page.locator("#run-progress").inner_html(), timeout=60, what="its status")
    page.locator("#delete-run").click()
    wait_for(lambda: not RunStore(ws).exists(queued), timeout=60, what="the queued run to go")
    assert dialogs[-1] == f"Delete run {queued} and all its files?"
    wait_for(lambda: page.locator("#run-picker input").input_value() == "", timeout=60, what="the picker to clear")

    pick(page, running)
    wait_for(lambda: 'data-status="running"' in page.locator("#run-progress").inner_html(), timeout=120, what="running")
    page.locator("#delete-run").click()
    wait_for(lambda: not RunStore(ws).exists(running), timeout=300, what="the running run to stop and go")
    assert dialogs[-1] == f"{running} is running. Stop it, then delete it and all its files?"
    wait_for(lambda: page.locator("#run-picker input").input_value() == "", timeout=60, what="the picker to clear")
    wait_for(lambda: "no run picked" in page.locator("#loss-plot-empty").inner_text(), timeout=60, what="an empty view")
    shoot(page, "runs-3-after-deletes")

    toasts = page.locator(".toast-body").all_inner_texts()
    assert not toasts, toasts  # no error toasts (stale choices, a cancelled confirmation, a run's files going)
    # No warnings from the charts' data (Gradio's own spec names an older Vega-Lite: that notice is Gradio's).
    assert not [m for m in console if m.startswith("WARN") and "but the current version of Vega-Lite" not in m], console
    assert yaml.safe_load(RunStore(ws).get_run("gan")["config"])["family"] == "gan"
