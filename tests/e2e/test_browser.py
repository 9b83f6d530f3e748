"""Drive the real app in headless Chromium: train by clicking, watch, stop, resume, generate."""
import re

from pipelines.store import RunStore
from tests.e2e.conftest import compare_picked, note_says
from tests.studio.conftest import App, fill_form, wait_for, wait_for_status  # noqa: F401  (the launch fixture comes from tests/studio)

pytest_plugins = ["tests.studio.conftest"]

TINY_FORM = {
    "data-image-size": "8", "data-num-samples": "96", "model-base-channels": "8", "training-epochs": "3000",
    "training-max-minutes": "0", "training-batch-size": "16", "training-sample-every-epochs": "2",
    "training-checkpoint-every-epochs": "2", "evaluation-every-epochs": "2", "evaluation-num-samples": "64",
}


def progress_text(page) -> str:
    return page.locator("#run-progress").inner_text()


def step_of(page) -> int:
    m = re.search(r"step (\d+) of", progress_text(page))
    return int(m.group(1)) if m else -1


def test_train_watch_stop_resume_and_generate_by_clicking(launch, browser_page, shoot):
    app = launch()
    page = browser_page
    page.goto(app.url)
    fill_form(page, TINY_FORM)
    page.wait_for_timeout(500)
    # An out-of-range value marks its field with the allowed range, and nothing else changes.
    size = page.locator("#field-data-image-size input")
    size.fill("7")
    size.press("Tab")
    wait_for(lambda: "at least 8 (got 7)" in page.locator("#field-data-image-size").inner_text(), what="the range note")
    assert page.locator("#field-training-epochs input").input_value() == "3000"
    assert page.locator("#field-data-num-samples input").input_value() == "96"
    assert page.get_by_text("Error", exact=True).count() == 0  # no full-pane error badges
    shoot(page, "0-out-of-range")
    # A bad value is refused at Start, and the field says why (18 px cannot be halved twice for three UNet levels).
    size.fill("18")
    size.press("Tab")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Not started; fix these fields").wait_for()
    assert "⚠️" in page.locator("#field-data-image-size").inner_text()
    assert "divisible by 4" in page.locator("#field-data-image-size").inner_text()
    shoot(page, "0-refused")
    size.fill("8")
    size.press("Tab")
    shoot(page, "1-train-form")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Queued ddpm-digits-8")).wait_for()
    shoot(page, "2-queued")
    page.get_by_role("button", name="Start training").click()  # the same config again: asked first, not queued
    page.get_by_text(re.compile(r"an identical run, ddpm-digits-8, is already")).wait_for()
    assert [r["name"] for r in RunStore(app.workspace).list_runs()] == ["ddpm-digits-8"]

    page.get_by_role("tab", name="Runs").click()
    page.locator("#run-picker input").click()
    page.get_by_role("option", name="ddpm-digits-8").click()
    wait_for(lambda: step_of(page) > 0, what="the first logged steps")
    first = step_of(page)
    assert "of 15000" in progress_text(page)  # the form's 3000 epochs x 5 steps reached the run
    wait_for(lambda: step_of(page) > first + 10, what="more steps on the chart")
    assert page.locator("#loss-plot canvas, #loss-plot svg").count() > 0
    wait_for(lambda: "FD (digits-cnn)" in page.locator("#evaluations-table").inner_text(), what="an evaluation row")
    assert "train (86)" in page.locator("#evaluations-table").inner_text()
    assert page.locator("#fd-plot canvas, #fd-plot svg").count() > 0
    shoot(page, "3-training")

    page.locator("#stop-run").click()
    wait_for(lambda: "stopped" in progress_text(page), what="status stopped")
    stopped_at = step_of(page)
    shoot(page, "4-stopped")
    page.locator("#resume-run").click()
    wait_for(lambda: "running" in progress_text(page) and step_of(page) > stopped_at, what="the resumed run")
    shoot(page, "5-resumed")
    page.locator("#stop-run").click()
    wait_for(lambda: "stopped" in progress_text(page), what="the second stop")

    page.get_by_role("tab", name="Generate").click()
    # The list fills itself (no refresh button) and picks the newest run's newest checkpoint.
    wait_for(lambda: page.locator("#gen-checkpoint input").input_value().startswith("ddpm-digits-8 · "), timeout=120,
             what="the Generate list to fill itself")
    page.locator("#generate").click()
    page.get_by_text(re.compile(r"16 images of 8x8 in")).wait_for()
    assert page.locator("#gallery img").count() >= 16
    shoot(page, "6-generated")


GAN_FORM = {
    "data-num-samples": "96", "model-g-channels": "8", "model-d-channels": "8", "training-epochs": "2",
    "training-max-minutes": "0", "training-batch-size": "16", "training-sample-every-epochs": "1",
    "evaluation-every-epochs": "1", "evaluation-num-samples": "64",
}


def test_a_gan_from_the_train_tab_with_its_balance_chart(launch, browser_page, shoot):
    app = launch()
    page = browser_page
    page.goto(app.url)
    page.locator("#train-family input").click()
    page.get_by_role("option", name="GAN (SAGAN-style)").click()
    page.locator("#field-gan-loss").wait_for()
    wait_for(lambda: page.locator("#train-preset input").input_value() == "gan_digits16.yaml", what="the GAN preset")
    fill_form(page, GAN_FORM)
    page.wait_for_timeout(500)
    shoot(page, "7-gan-form")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Queued gan-digits-16")).wait_for(timeout=300_000)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#run-picker input").click()
    page.get_by_role("option", name="gan-digits-16").click()
    # The store says when the run ends (at once if it fails); then the page shows it within a few refreshes.
    wait_for_status(lambda: RunStore(app.workspace).get_run("gan-digits-16"), "completed", what="the GAN run to complete")
    wait_for(lambda: "completed" in progress_text(page), timeout=300, what="the page to show the run completed")
    page.locator("#watch-guide").get_by_text("Reading a GAN").wait_for()
    assert page.locator("#watch-plot canvas, #watch-plot svg").count() > 0
    assert "Final evaluation" in page.locator("#final-evaluation").inner_text()
    shoot(page, "8-gan-run")


SR_FORM = {"data-image-size": "64", "sr-patch-size": "32", "training-epochs": "3", "training-max-minutes": "0",
           "training-batch-size": "8", "evaluation-every-epochs": "1"}


def test_super_resolution_pairs_training_and_upscaling_by_clicking(launch, browser_page, shoot, tmp_path):
    import skimage.data
    from PIL import Image

    hr = tmp_path / "hr"
    for category, photos in {"animals": ["chelsea", "cat"], "things": ["coffee", "rocket", "astronaut"]}.items():
        (hr / category).mkdir(parents=True)
        for photo in photos:
            Image.fromarray(getattr(skimage.data, photo)()).save(hr / category / f"{photo}.png")
    app = launch()
    page = browser_page
    page.goto(app.url)
    page.locator("#train-family input").click()
    page.get_by_role("option", name="Super-resolution (ESRGAN family)").click()
    wait_for(lambda: page.locator("#train-preset input").input_value() == "sr_lite_x4.yaml", what="the SR preset")
    page.locator("#field-model-size input").click()
    page.get_by_role("option", name="ultra_lite").click()
    fill_form(page, SR_FORM)
    page.get_by_text("Prepare LR pairs from a folder").click()
    page.locator("#pairs-input textarea, #pairs-input input").first.fill(str(hr))
    page.get_by_label("HR size").fill("64")
    page.locator("#pairs-run").click()
    page.locator("#pairs-report").get_by_text("Pairs ready").wait_for()
    assert "5 images processed" in page.locator("#pairs-report").inner_text()
    assert page.locator("#field-sr-source input").input_value() == "pairs"
    shoot(page, "9-sr-pairs")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Queued sr-hr-64")).wait_for()

    page.get_by_role("tab", name="Runs").click()
    page.locator("#run-picker input").click()
    page.get_by_role("option", name="sr-hr-64").click()
    wait_for(lambda: "completed" in progress_text(page), what="the SR run to complete")
    page.locator("#watch-guide").get_by_text("Reading super-resolution").wait_for()
    assert page.locator("#watch-plot canvas, #watch-plot svg").count() > 0
    assert page.locator("#watch-plot-2 canvas, #watch-plot-2 svg").count() > 0  # SSIM
    assert "Latest validation" in page.locator("#final-evaluation").inner_text()
    page.wait_for_timeout(2500)  # the charts draw their lines
    shoot(page, "10-sr-run")

    small = tmp_path / "small.png"
    Image.fromarray(skimage.data.astronaut()[::8, ::8]).save(small)
    (tmp_path / "readme.txt").write_text("not an image")
    page.get_by_role("tab", name="Upscale").click()
    page.locator("#upscale-files input[type=file]").set_input_files([str(small), str(tmp_path / "readme.txt")])
    page.locator("#upscale-model input").click()
    page.get_by_role("option", name=re.compile("sr-hr-64 · final")).click()
    page.locator("#upscale-run").click()
    page.locator("#upscale-status").get_by_text("1 upscaled").wait_for()
    status = page.locator("#upscale-status").inner_text()
    assert "256 x 256" in status and "readme.txt" in status and "not an image file" in status
    assert page.locator("#upscale-slider img").count() >= 1
    page.locator("#upscale-download td[aria-label='small.png']").wait_for()  # one PNG to download
    page.wait_for_timeout(1500)  # the slider's images load
    shoot(page, "11-upscaled")


def test_prompt_tab_generates_remembers_and_sends_to_upscale(launch, browser_page, shoot):
    import yaml

    from tests.train.test_t2i import tiny_t2i

    app = launch()
    client = app.client()
    name = client.predict(yaml.safe_dump(tiny_t2i().model_dump(mode="json")), api_name="/start")["name"]
    wait_for(lambda: next(r for r in client.predict(api_name="/list_runs") if r["name"] == name)["status"] == "completed",
             timeout=300, what="the text-to-image run")
    page = browser_page
    page.goto(app.url)
    page.get_by_role("tab", name="Prompt").click()
    page.locator("#prompt-checkpoint input").click()
    page.get_by_role("option", name=re.compile(f"{name} · final")).click()
    page.locator("#prompt-text textarea").fill("a red circle on a blue background")
    page.locator("#prompt-generate").click()
    page.locator("#prompt-time").get_by_text(re.compile(r"8 images of 16x16 in")).wait_for()
    assert page.locator("#prompt-gallery img").count() >= 8
    page.locator("#prompt-gallery img").first.click()
    page.wait_for_timeout(500)
    shoot(page, "12-prompt")
    page.keyboard.press("Escape")
    page.locator("#prompt-send").click()
    page.locator("#upscale-files").get_by_text(re.compile(r"prompt-.*")).first.wait_for()
    shoot(page, "13-sent-to-upscale")


def test_compare_interpolate_and_chain_by_clicking(launch, browser_page, shoot, sr_model):
    from tests.studio.conftest import tiny_yaml

    app = launch()
    client = app.client()
    name = client.predict(tiny_yaml(epochs=4, checkpoint_every_epochs=2), api_name="/start")["name"]
    wait_for(lambda: next(r for r in client.predict(api_name="/list_runs") if r["name"] == name)["status"] == "completed",
             timeout=300, what="the run")
    page = browser_page
    page.goto(app.url)

    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-checkpoints input").click()
    for option in (f"{name} · final", f"{name} · checkpoint-"):  # a multiselect list stays open between picks
        page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
        page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    compare_picked(page)
    assert page.locator("#compare-grid img").count() == 8 and page.locator("#compare-slider").is_visible()
    assert page.locator("#compare-table").get_by_text("8px", exact=True).count() >= 2
    shoot(page, "14-compare")

    page.get_by_role("tab", name="Interpolate").click()
    page.locator("#interp-checkpoint input").click()
    page.get_by_role("option", name=re.compile(re.escape(f"{name} · final"))).click()
    page.locator("#interpolate").click()
    note_says(page, "interpolate-note", r"8 frames, seed 0 → 1")
    assert page.locator("#interpolation-gif img").count() == 1
    shoot(page, "15-interpolate")
    assert "interpolation" in page.locator("#interpolation-download").inner_text()

    page.get_by_role("tab", name="Chain").click()
    page.locator("#chain-generator input").click()
    page.get_by_role("option", name=re.compile(re.escape(f"{name} · final"))).click()
    page.locator("#chain-upscaler input").fill(str(sr_model))
    page.keyboard.press("Enter")
    page.locator("#chain-run").click()
    note_says(page, "chain-note", r"4 images, 8px → 16px \(x2\)")
    assert page.locator("#chain-gallery img").count() >= 12  # generated · bicubic · super-resolved, four times
    shoot(page, "16-chain")
    page.locator("#chain-send-upscaled").click()
    page.locator("#upscale-files").get_by_text(re.compile(r"^003")).first.wait_for()  # Gradio shows stem and extension apart
