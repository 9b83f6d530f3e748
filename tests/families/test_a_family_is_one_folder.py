"""A family is one folder (here one module under tests/): registered through PIPELINES_FAMILIES, it appears in the
Train tab, trains from the command line, samples through the API and shows in Compare, no engine file edited."""
import os
import subprocess
import sys

import httpx
import pytest

from pipelines import api, families
from pipelines.config import CONFIG_CLASSES
from pipelines.store import RunStore
from tests.conftest import ROOT
from tests.families import colour_family

pytest_plugins = ["tests.studio.conftest"]
PLUGIN = {"PIPELINES_FAMILIES": "tests.families.colour_family"}


@pytest.fixture
def colour_registered():
    families.register(colour_family.SPEC)
    yield
    families.FAMILIES.pop("colour")
    CONFIG_CLASSES.pop("colour")


def test_the_family_trains_from_the_command_line_samples_and_compares(tmp_path, trained_run, colour_registered):
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "pipelines", "train", "--config", str(colour_family.HERE / "colour_digits.yaml"),
                    "--workspace", str(ws), "--name", "colour", "--quiet"], cwd=ROOT, env={**os.environ, **PLUGIN},
                   check=True, capture_output=True, text=True)
    row = RunStore(ws).get_run("colour")
    assert row["status"] == "completed" and row["family"] == "colour"
    losses = [m["value"] for m in RunStore(ws).metrics("colour", ["loss"])]
    assert losses[-1] < losses[0] / 2  # it learnt the colour
    final = ws / "colour" / "final"
    model = api.load(final)
    images = api.sample(model, api.SampleRequest(num=3))
    assert images.shape == (3, 8, 8, 1) and images.std() == 0  # one grey
    assert 10 < images.mean() < 90  # the digits' dark mean, not the grey it started from (127)
    columns = api.compare([final, trained_run[1] / "final"], api.SampleRequest(num=2, sampler="ddim", steps=2))
    assert [c.meta["kind"] for c in columns] == ["colour", "diffusion"]


def test_the_family_appears_in_the_train_tab(launch, monkeypatch):
    monkeypatch.setenv("PIPELINES_FAMILIES", PLUGIN["PIPELINES_FAMILIES"])
    app = launch()
    config = httpx.get(f"{app.url}config", timeout=30).json()
    family_dropdowns = [c["props"] for c in config["components"] if c["props"].get("elem_id") == "train-family"]
    assert ["One colour (test family)", "colour"] in [list(choice) for choice in family_dropdowns[0]["choices"]]
