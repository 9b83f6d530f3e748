"""The Train tab's dataset preview, in headless Chromium: a folder with bad files, as a newcomer brings one."""
import numpy as np
from PIL import Image

from tests.studio.conftest import wait_for  # noqa: F401

pytest_plugins = ["tests.studio.conftest"]


def test_preview_then_prepare_a_folder_with_bad_files(launch, browser_page, shoot, tmp_path):
    folder = tmp_path / "pets"
    for k, kind in enumerate(("cats", "dogs")):
        (folder / kind).mkdir(parents=True)
        for i in range(12):
            pixels = np.random.default_rng(10 * k + i).integers(0, 255, (40, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / kind / f"{i:02d}.png")
    (folder / "dogs" / "broken.png").write_bytes(b"not a png")
    (folder / "cats" / "notes.txt").write_text("a note")
    app = launch()
    page = browser_page
    page.goto(app.url)
    box = page.locator("#train-dataset input")
    box.fill(str(folder))
    box.press("Enter")
    page.get_by_text("Preview the dataset as it will be trained on").click()
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator("#dataset-preview")
    wait_for(lambda: "25 images" in preview.inner_text(), timeout=120, what="the quick preview")
    text = preview.inner_text()
    assert "counted, not yet decoded" in text and "not prepared yet" in text and "notes.txt" in text
    page.get_by_role("button", name="Prepare now and check every image").click()
    wait_for(lambda: "24 images" in preview.inner_text(), timeout=300, what="the prepared preview")
    text = preview.inner_text()
    assert "Classes: cats (12), dogs (12)" in text and "dogs/broken.png: not an image file" in text
    assert "prepared just now (25 images decoded" in text
    assert page.locator("#dataset-preview-grid img").count() == 1
    shoot(page, "preview-prepared")
    page.get_by_role("button", name="Preview", exact=True).click()
    wait_for(lambda: "Cache: prepared" in preview.inner_text(), timeout=120, what="the cache state")
