"""A short time budget and a Stop during an evaluation, as a person sees them: started from the Train tab, watched
in the Runs tab, checked against what the run store recorded."""
import re
import time

from pipelines.store import RunStore
from tests.conftest import assert_evaluations_fit
from tests.e2e.test_browser import TINY_FORM, progress_text
from tests.studio.conftest import fill_form, wait_for, wait_for_status

pytest_plugins = ["tests.studio.conftest"]


def start_from_train_tab(page, form: dict | None) -> str:
    """Fill the Train tab's tiny DDPM form with `form`'s changes (None: filled already) and start the run."""
    if form is not None:
        fill_form(page, {**TINY_FORM, **form})
    page.get_by_role("button", name="Start training").click()
    queued = page.get_by_text(re.compile(r"Queued ddpm-digits-8"))
    queued.wait_for()
    return "ddpm-digits-8"


def watch(page, name: str) -> None:
    page.get_by_role("tab", name="Runs").click()
    wait_for(lambda: page.locator("#run-picker input").click() or page.get_by_role("option", name=name, exact=True).count(),
             timeout=120, what="the run among the choices")
    page.get_by_role("option", name=name, exact=True).click()


def test_a_30_s_run_ends_near_its_budget_with_evaluations_that_fit(launch, browser_page, shoot):
    app = launch()
    page = browser_page
    page.goto(app.url)
    # The newcomer's sweep run: 30 s, an evaluation of 500 samples every 10 epochs.
    form = {"training-max-minutes": "0.5", "evaluation-every-epochs": "10", "evaluation-num-samples": "500"}
    fill_form(page, {**TINY_FORM, **form})
    # Nothing measured yet on this workspace: the budget line says how evaluations share the budget.
    wait_for(lambda: "each evaluation during training at most 15% of the budget" in page.locator("#train-budget").inner_text(),
             timeout=120, what="the evaluations' share in the budget line")
    name = start_from_train_tab(page, None)
    watch(page, name)
    store = RunStore(app.workspace)
    row = wait_for_status(lambda: store.get_run(name), "completed")
    wait_for(lambda: "completed · ended: time budget" in progress_text(page), timeout=120, what="the end in the Runs tab")
    shoot(page, "budget-30s-ended")

    during = store.evaluations(name, "training")
    log = (app.workspace / name / "log.txt").read_text()
    if during:  # sized to 15% of 30 s: fewer than the 500 asked, the same count each time
        assert during[0]["num_samples"] < 500 and f"evaluations sized to {during[0]['num_samples']} of 500 samples" in log
        assert_evaluations_fit(during, 30, every_epochs=10, last_step=row["step"])
    else:  # on a busy machine not even 100 samples fit in 4.5 s: skipped, and said so
        assert "evaluations skipped: fewer than 100 samples fit in 15% of the 30 s time budget" in log
    assert len(store.evaluations(name, "final")) <= 1
    # Wall time after start-up (from when the budget began, which the store keeps): near the budget, loosely for a
    # busy machine (the newcomer's 30-s runs took 55-73 s, a 31-s evaluation among them).
    started = row["budget_ends_at"] - 30
    assert row["ended_at"] - started <= 1.5 * 30 + 5, (row["ended_at"] - started, log)


def test_stop_during_an_evaluation_ends_the_run_stopped(launch, browser_page, shoot):
    app = launch()
    page = browser_page
    page.goto(app.url)
    # No budget; an evaluation after every epoch, far longer than the epoch (20,000 samples).
    name = start_from_train_tab(page, {"evaluation-every-epochs": "1", "evaluation-num-samples": "20000"})
    watch(page, name)
    wait_for(lambda: "evaluating:" in progress_text(page), timeout=900, what="the evaluation after the first epoch")
    shoot(page, "stop-1-evaluating")
    page.locator("#stop-run").click()
    store = RunStore(app.workspace)
    # When the Stop reached the store (the page's own latency is not the engine's), then the end.
    asked_at = wait_for(lambda: store.get_run(name)["stop_requested"] and time.time(), timeout=300, every=0.05,
                        what="the stop request in the store")
    row = wait_for_status(lambda: store.get_run(name), "stopped", timeout=300)
    wait_for(lambda: "stopped" in progress_text(page), timeout=120, what="the stopped run in the Runs tab")
    shoot(page, "stop-2-stopped")

    assert row["end_reason"] == "stop requested" and row["epoch"] == 1
    # The evaluation was cut short and nothing after it ran: no evaluation recorded, no final one, no final/.
    assert store.evaluations(name) == []
    log = (app.workspace / name / "log.txt").read_text()
    assert "evaluation at epoch 1 stopped: a person asked the run to stop" in log and "final evaluation" not in log
    assert not (app.workspace / name / "final").exists()
    # Within 10 s of the request reaching the store (the product asks this; a busy machine gets the same bound, as
    # the stop waits for one sampler step and one checkpoint, not for the evaluation).
    assert row["ended_at"] - asked_at <= 10, row["ended_at"] - asked_at
