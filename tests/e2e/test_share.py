"""The Runs tab's sharing in headless Chromium: a run exported as a zip and imported back as a new run, and a push
to the Hub that cannot happen (offline) saying why in one line."""
from pipelines.api import train
from pipelines.store import RunStore
from tests.conftest import tiny_config
from tests.studio.conftest import wait_for

pytest_plugins = ["tests.studio.conftest"]


def test_export_import_and_a_refused_push_from_the_runs_tab(launch, browser_page, shoot, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the app inherits it: no network here
    monkeypatch.delenv("HF_TOKEN", raising=False)
    ws = tmp_path / "ws"
    train(tiny_config(training={"epochs": 1}), ws, progress=False)
    app = launch(workspace=ws)
    page = browser_page
    page.goto(app.url)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#run-picker input").click()
    page.get_by_role("option", name="ddpm-digits-8", exact=True).click()
    page.get_by_text("Share: trackers, the Hugging Face Hub, export and import").click()
    wait_for(lambda: "No experiment trackers" in page.locator("#run-trackers").inner_text(), timeout=120, what="trackers")

    # A completed run offers only what applies to it: Continue training and Delete, not Stop or Resume.
    wait_for(lambda: page.locator("#continue-run").is_visible(), timeout=120, what="Continue training")
    assert not page.locator("#stop-run").is_visible() and not page.locator("#resume-run").is_visible()
    page.get_by_text("Model card", exact=True).click()
    card = page.locator("#model-card")
    wait_for(lambda: "How to load" in card.inner_text(), timeout=120, what="the model card")
    assert "README.md" in card.inner_text() and "ddpm-digits-8" in card.inner_text()
    assert "from_pretrained" in page.locator("#export-vs-download").inner_text()

    page.locator("#push-repo textarea, #push-repo input").first.fill("someone/digits")
    page.locator("#push-run").click()
    wait_for(lambda: "Not pushed:" in page.locator("#push-status").inner_text(), timeout=120, what="the push refused")
    assert "Traceback" not in page.locator("#push-status").inner_text()

    page.locator("#export-run").click()
    wait_for(lambda: "Exported ddpm-digits-8" in page.locator("#share-status").inner_text(), timeout=120, what="the export")
    exported = ws / "exports" / "ddpm-digits-8.zip"
    assert exported.stat().st_size > 1000
    page.locator("#import-run input[type=file]").set_input_files(str(exported))
    wait_for(lambda: "Imported as ddpm-digits-8-2" in page.locator("#share-status").inner_text(), timeout=120, what="the import")
    store = RunStore(ws)
    assert store.get_run("ddpm-digits-8-2")["status"] == "completed"
    assert len(store.metrics("ddpm-digits-8-2", ["loss"])) == len(store.metrics("ddpm-digits-8", ["loss"])) > 0
    shoot(page, "share-1-exported-and-imported")
    page.locator("#run-picker input").click()
    page.get_by_role("option", name="ddpm-digits-8-2", exact=True).click()  # another run: no message of the last one's
    wait_for(lambda: page.locator("#run-action").inner_text().strip() == "", timeout=120, what="an empty action message")
