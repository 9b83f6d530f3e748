"""In headless Chromium, as a newcomer meets them: a folder of colour photos with the greyscale DDPM preset (the form
proposes 3 channels and takes them in a click), a preview that goes when the dataset changes, and the Prompt tab
with no text-to-image model saying how to get one."""
from pipelines.data.builtin import whole_photos
from tests.studio.conftest import wait_for

pytest_plugins = ["tests.studio.conftest"]


def test_colour_photos_get_three_channels_and_a_stale_preview_goes(launch, browser_page, shoot, tmp_path):
    photos, other = tmp_path / "photos", tmp_path / "other"
    photos.mkdir()
    other.mkdir()
    for r in whole_photos().records:  # real colour photos, as JPEGs from a camera folder
        r.image.save(photos / f"{r.name}.jpg", quality=90)
        r.image.convert("L").save(other / f"{r.name}.png")
    app = launch()
    page = browser_page
    page.goto(app.url)
    channels = page.locator("#field-data-channels input")
    assert channels.input_value() == "1"  # the DDPM preset: greyscale digits

    box = page.locator("#train-dataset input")
    box.fill(str(photos))
    box.press("Enter")
    note = page.locator("#dataset-proposal")
    wait_for(lambda: "channels 3" in note.inner_text(), timeout=300, what="the proposal of 3 channels")
    assert "in colour" in note.inner_text()
    page.locator("#apply-proposal").click()
    wait_for(lambda: channels.input_value() == "3", timeout=300, what="channels set to 3")
    wait_for(lambda: "Set channels 3" in note.inner_text(), timeout=120, what="the note saying what was set")
    page.get_by_text("Advanced: the full config (YAML)").click()
    wait_for(lambda: "channels: 3" in page.locator(".cm-content").first.inner_text(), timeout=120, what="the YAML")

    page.get_by_text("Preview the dataset as it will be trained on").click()
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator("#dataset-preview")
    wait_for(lambda: "images" in preview.inner_text(), timeout=300, what="the preview")
    assert page.locator("#dataset-preview-grid img").count() == 1
    shoot(page, "form-follows-1-colour-photos")

    box.fill(str(other))  # another dataset: the preview of the photos goes, and grey images at 3 channels are said
    box.press("Enter")
    wait_for(lambda: preview.inner_text().strip() == "", timeout=120, what="the old preview to go")
    assert page.locator("#dataset-preview-grid img").count() == 0
    wait_for(lambda: "channels 1" in note.inner_text(), timeout=300, what="the proposal of 1 channel")

    page.get_by_role("tab", name="Prompt").click()
    assert "No text-to-image model yet?" in page.locator("#prompt-starter-note").inner_text()
    page.locator("#prompt-text textarea").fill("a red circle")
    page.locator("#prompt-generate").click()
    took = page.locator("#prompt-time")
    wait_for(lambda: "Train one" in took.inner_text(), timeout=120, what="how to get a text model")
    assert page.get_by_role("button", name="Train one: t2i_shapes32.yaml").is_visible()
    shoot(page, "form-follows-2-prompt-without-model")
