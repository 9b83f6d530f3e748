"""The use tabs as a newcomer meets them, in headless Chromium: the checkpoint lists fill themselves (on load, on a
reload and when a run writes a new checkpoint), only the controls that apply to the picked checkpoint or mode are
shown, and a simple mistake is one message next to the button, not an "Error" badge over the outputs."""
import re

from tests.conftest import tiny_config
from tests.e2e.conftest import compare_picked
from tests.studio.conftest import wait_for
from tests.train.test_gan import tiny_gan
from tests.train.test_t2i import tiny_t2i

pytest_plugins = ["tests.studio.conftest"]


def visible(page, elem_id: str) -> bool:
    return page.locator(f"#{elem_id}").is_visible()


def open_list(page, elem_id: str) -> None:
    box = page.locator(f"#{elem_id} input")
    box.blur()  # a focused list (after Escape) opens again only on a fresh focus
    box.click()


def pick(page, elem_id: str, option: str) -> None:
    open_list(page, elem_id)
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()


def no_error_badge(page) -> bool:
    return page.get_by_text("Error", exact=True).count() == 0


def test_lists_fill_themselves_and_only_controls_that_apply_are_shown(launch, browser_page, shoot, tmp_path, sr_model):
    import numpy as np
    from PIL import Image

    from pipelines.api import train

    ws = tmp_path / "ws"
    runs = {"digits": tiny_config(training={"epochs": 1}), "digits_16x16_gan": tiny_gan(training={"epochs": 1}),
            "shapes": tiny_t2i(training={"epochs": 1})}  # the GAN's long name must wrap in Compare's headers
    for name, config in runs.items():
        train(config, ws, name=name, progress=False)
    app = launch(workspace=ws)
    page = browser_page
    page.goto(app.url)
    page.reload()  # the lists were empty after a reload until a button was pressed

    page.get_by_role("tab", name="Generate").click()
    # Filled without a click, the newest run's final checkpoint picked; text-to-image runs belong to the Prompt tab.
    wait_for(lambda: page.locator("#gen-checkpoint input").input_value().startswith("digits_16x16_gan · final"),
             timeout=120, what="the Generate list to fill itself")
    open_list(page, "gen-checkpoint")
    offered = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert any(o.startswith("digits · final") for o in offered) and not any(o.startswith("shapes") for o in offered)
    # A GAN: no sampler, steps or guidance; its truncation is offered.
    wait_for(lambda: not visible(page, "gen-sampler") and not visible(page, "gen-guidance"), timeout=60,
             what="the diffusion controls to hide for a GAN")
    assert not visible(page, "gen-steps") and visible(page, "gen-truncation")
    shoot(page, "use-1-generate-gan")
    pick(page, "gen-checkpoint", "digits · final")
    wait_for(lambda: visible(page, "gen-sampler") and visible(page, "gen-steps"), timeout=60,
             what="the diffusion controls for a diffusion checkpoint")
    assert not visible(page, "gen-truncation")

    # A run that writes a checkpoint while the page is open shows up without a click.
    train(tiny_config(training={"epochs": 1}), ws, name="later", progress=False)
    open_list(page, "gen-checkpoint")
    wait_for(lambda: page.get_by_role("option", name=re.compile(r"^later · final")).count() > 0, timeout=120,
             what="the new run's checkpoint in the open list")
    page.keyboard.press("Escape")
    assert page.locator("#gen-checkpoint input").input_value().startswith("digits · final")  # the pick is kept

    page.get_by_role("tab", name="Prompt").click()
    wait_for(lambda: page.locator("#prompt-checkpoint input").input_value().startswith("shapes · final"), timeout=60,
             what="the Prompt list")
    box = page.locator("#prompt-text textarea")
    assert box.input_value() == "" and "e.g." in box.get_attribute("placeholder")  # a placeholder, not a value
    page.locator("#prompt-generate").click()
    page.locator("#prompt-time").get_by_text("⚠️ Prompt: empty").wait_for()  # names the field
    assert no_error_badge(page)
    shoot(page, "use-2-prompt-empty")

    page.get_by_role("tab", name="Interpolate").click()
    wait_for(lambda: page.locator("#interp-checkpoint input").input_value() != "", timeout=60, what="the Interpolate list")
    pick(page, "interp-checkpoint", "digits · final")
    wait_for(lambda: not visible(page, "interp-prompt-a"), timeout=60, what="no prompt for a diffusion model")
    assert visible(page, "interp-seed-b") and not visible(page, "interp-prompt-b")
    assert page.locator("#interp-mode").get_by_text("Between two prompts", exact=True).count() == 0  # not for a model without text
    pick(page, "interp-checkpoint", "shapes · final")
    page.locator("#interp-mode").get_by_text("Between two prompts", exact=True).click()
    wait_for(lambda: visible(page, "interp-prompt-b") and not visible(page, "interp-seed-b"), timeout=60,
             what="the fields of prompt mode")
    assert "noise" in page.locator("#interp-seed-a").inner_text()  # one seed: the noise all frames share
    shoot(page, "use-3-interpolate-prompts")
    page.locator("#interp-mode").get_by_text("Between two seeds", exact=True).click()
    wait_for(lambda: visible(page, "interp-seed-b") and not visible(page, "interp-prompt-b"), timeout=60,
             what="the fields of seed mode")

    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-checkpoints", "digits · final")
    page.keyboard.press("Escape")
    page.locator("#compare-run").click()
    page.locator("#compare-note").get_by_text("Pick 2 to 8 checkpoints").wait_for()  # next to the button
    assert no_error_badge(page)
    pick(page, "compare-checkpoints", "digits_16x16_gan · final")
    page.keyboard.press("Escape")
    wait_for(lambda: not visible(page, "compare-prompt"), timeout=60, what="no prompt field without a text model")
    compare_picked(page)
    headers = page.locator("#compare-native .compare-header")
    assert headers.count() == 2 and "digits / final" in headers.first.get_attribute("title")
    box = headers.nth(1).bounding_box()  # wrapped inside its column, not cut off
    assert page.evaluate("e => e.scrollWidth <= e.clientWidth", headers.nth(1).element_handle()) and box["width"] > 0
    page.wait_for_timeout(500)
    shoot(page, "use-4-compare")
    # One checkpoint's samplers: its list offers only models with samplers; no prompt goes to a model without text.
    page.get_by_text("Samplers and step counts, one checkpoint").click()
    pick(page, "samplers-checkpoint", "digits · final")
    wait_for(lambda: not visible(page, "samplers-prompt"), timeout=60, what="no prompt for a diffusion model")
    page.locator("#samplers-steps textarea, #samplers-steps input").first.fill("2, x")
    page.locator("#samplers-run").click()
    page.locator("#samplers-note").get_by_text("Step counts: whole numbers").wait_for()
    page.locator("#samplers-steps textarea, #samplers-steps input").first.fill("2")
    page.locator("#samplers-run").click()
    page.locator("#samplers-note").get_by_text("2 settings").wait_for()
    assert no_error_badge(page)

    page.get_by_role("tab", name="Chain").click()
    pick(page, "chain-generator", "digits_16x16_gan · final")
    page.get_by_text("Sampling", exact=True).click()
    wait_for(lambda: not visible(page, "chain-prompt") and page.get_by_text("Truncation", exact=True).is_visible(),
             timeout=60, what="the GAN's controls in Chain")
    shoot(page, "use-5-chain-gan")

    page.get_by_role("tab", name="Upscale").click()
    page.locator("#upscale-run").click()
    page.locator("#upscale-status").get_by_text("Pick a trained super-resolution model").wait_for()
    assert no_error_badge(page)
    shoot(page, "use-6-upscale-mistake")
    # A long upscale (144 tiles) reports its progress under its button, not below the fold.
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (384, 384, 3), dtype=np.uint8)).save(big)
    page.locator("#upscale-files input[type=file]").set_input_files([str(big)])
    page.locator("#upscale-model input").fill(str(sr_model))
    page.keyboard.press("Enter")
    page.get_by_label("Tile size").fill("32")
    page.locator("#upscale-run").click()
    page.locator("#upscale-status").get_by_text(re.compile(r"tile \d+ of 144")).wait_for()
    button, status = page.locator("#upscale-run").bounding_box(), page.locator("#upscale-status").bounding_box()
    assert 0 <= status["y"] - (button["y"] + button["height"]) < 40 and status["y"] + status["height"] < 1100
    shoot(page, "use-7-upscale-progress")
    page.locator("#upscale-status").get_by_text("1 upscaled").wait_for()
