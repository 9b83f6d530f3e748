"""A 2 x 2 sweep started from the Train tab, compared in the Runs tab, its best checkpoints sent to the Compare tab."""
import json
import re

from pipelines.store import RunStore
from tests.studio.conftest import fill_form, wait_for

pytest_plugins = ["tests.studio.conftest"]

# Tiny runs, evaluation off (the main metric is then the loss): four of them train in seconds each.
TINY_FORM = {
    "data-image-size": "8", "data-num-samples": "64", "model-base-channels": "4", "training-epochs": "2",
    "training-max-minutes": "0", "training-sample-every-epochs": "2", "training-checkpoint-every-epochs": "1",
    "evaluation-every-epochs": "0", "early-stopping-patience": "0",
}
RUNS = ["ddpm-digits-8-lr1e-3-bs16", "ddpm-digits-8-lr1e-3-bs32", "ddpm-digits-8-lr3e-3-bs16", "ddpm-digits-8-lr3e-3-bs32"]
SWEEP = "ddpm-digits-8-sweep"


def sweep_values(page, values: list[str]) -> None:
    for i, text in enumerate(values, start=1):
        box = page.locator(f"#sweep-values-{i} textarea, #sweep-values-{i} input").first
        box.fill(text)
        box.press("Tab")


def axes(page, plot: str) -> list[str]:
    """What the chart's Vega view says of its axes ("X-axis titled 'step' for a linear scale with values from 0 to 8")."""
    return page.locator(f"#{plot} [aria-label*='-axis titled']").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")


def test_a_two_by_two_sweep_from_the_train_tab(launch, browser_page, shoot):
    app = launch("--max-concurrent-runs", "2")
    page = browser_page
    page.goto(app.url)
    fill_form(page, TINY_FORM)
    page.get_by_role("button", name=re.compile(r"^Sweep: a grid of runs")).click()
    # A bad value is refused, naming the field and the value, and nothing is queued.
    sweep_values(page, ["1e-3, 3e-3", "16, -3"])
    page.get_by_role("button", name="Start sweep").click()
    page.locator("#sweep-status").get_by_text("Sweep not started").wait_for()
    assert "training.batch_size" in page.locator("#sweep-status").inner_text()
    assert "value -3" in page.locator("#sweep-status").inner_text()
    assert RunStore(app.workspace).list_runs() == []
    shoot(page, "sweep-0-refused")

    sweep_values(page, ["1e-3, 3e-3", "16, 32"])
    page.get_by_role("button", name="Start sweep").click()
    page.locator("#sweep-status").get_by_text(re.compile(f"Queued sweep {SWEEP}: 4 runs")).wait_for()
    shoot(page, "sweep-1-queued")
    store = RunStore(app.workspace)
    assert store.sweep_runs(SWEEP) == RUNS
    for name in RUNS:
        training = __import__("yaml").safe_load(store.get_run(name)["config"])["training"]
        assert (training["learning_rate"], training["batch_size"]) == ({"1e-3": 1e-3, "3e-3": 3e-3}[name.split("-lr")[1][:4]],
                                                                      int(name.split("-bs")[1]))
        assert store.get_run(name)["sweep"] == SWEEP

    def all_done():
        statuses = [store.get_run(n)["status"] for n in RUNS]
        assert not {"failed", "interrupted", "stopped"} & set(statuses), statuses
        return statuses == ["completed"] * 4

    wait_for(all_done, what="the four runs of the sweep to complete")

    page.get_by_role("tab", name="Runs").click()
    page.get_by_role("button", name=re.compile(r"^Compare runs . sweeps")).click()
    page.locator("#sweep-picker input").click()
    page.get_by_role("option", name=SWEEP).click()
    page.locator("#sweep-summary").get_by_text(re.compile(r"4 runs; best by loss")).wait_for()
    table = page.locator("#sweep-table")
    wait_for(lambda: all(name in table.inner_text() for name in RUNS), timeout=120, what="the four runs in the table")
    page.locator("#sweep-x-axis").get_by_text("wall clock").click()
    wait_for(lambda: "X-axis titled 'minutes since the run started'" in " ".join(axes(page, "sweep-metric-plot")),
             timeout=120, what="the wall-clock axis")
    page.locator("#sweep-table").scroll_into_view_if_needed()
    shoot(page, "sweep-2-compared")

    # The overlaid charts' data (read through the app's API, as the page gets it): one series per run, by its values.
    loss, metric, _, rows, paths = app.client().predict(SWEEP, RUNS, "step", api_name="/compare_runs")
    for plot in (loss, metric):
        spec = json.loads(plot.get("value", plot)["plot"])  # an update carries its value inside
        assert {row["run"] for row in spec["data"]["values"]} == {"lr=1e-3 bs=16", "lr=1e-3 bs=32", "lr=3e-3 bs=16",
                                                                   "lr=3e-3 bs=32"}
    starred = [row[1] for row in rows["data"] if row[0] == "★"]
    assert len(starred) == 1 and sorted(row[1] for row in rows["data"]) == RUNS
    best = starred[0]
    assert f"best by loss, lower is better: {best}" in page.locator("#sweep-summary").inner_text()
    assert paths.splitlines()[0].endswith(f"{best}/best") and len(paths.splitlines()) == 4

    page.get_by_role("button", name="Open the best checkpoints in the Compare tab").click()
    picker = page.locator("#compare-checkpoints")
    wait_for(lambda: picker.is_visible() and f"{best} · best" in picker.inner_text(), timeout=120,
             what="the checkpoints in the Compare tab, by their labels")
    wait_for(lambda: "press Compare" in page.locator("#compare-note").inner_text(), timeout=120, what="what to do next")
    # the tab shows its top, the picker, not the bottom where the sweep table was scrolled to
    wait_for(lambda: 0 <= picker.evaluate("el => el.getBoundingClientRect().top") < 1100, timeout=60,
             what="the picker in view")
    shoot(page, "sweep-3-in-compare")
