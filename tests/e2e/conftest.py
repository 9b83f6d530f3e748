import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.studio.conftest import wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.set_default_timeout(300_000)  # generous: on a loaded machine the app (at nice 10) is slow to answer
        yield page
        browser.close()


@pytest.fixture
def shoot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page, name):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save


def note_says(page, elem_id: str, pattern: str, timeout: float = 300) -> None:
    """Wait for the note `elem_id` to match `pattern`; on a timeout, say what it said instead (an error, say)."""
    note = page.locator(f"#{elem_id}")
    wait_for(lambda: re.search(pattern, note.inner_text()), timeout=timeout,
             what=lambda: f"{pattern!r} in #{elem_id} (it says {note.inner_text()!r})")


def compare_picked(page) -> None:
    """Press Compare once both picked checkpoints show in its list, and wait for its answer."""
    tokens = page.locator("#compare-checkpoints .token")
    wait_for(lambda: tokens.count() == 2, timeout=60,
             what=lambda: f"both picks in the list (it shows {tokens.all_inner_texts()})")
    page.locator("#compare-run").click()
    note_says(page, "compare-note", "2 checkpoints, 4 images each")
