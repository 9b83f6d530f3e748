import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# pytest.ini runs a pytest-xdist worker per core: each worker's torch takes its share of the cores, not all of them.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // WORKERS))

from pipelines.config import validate_config  # noqa: E402


def pytest_collection_modifyitems(items):
    """pytest-xdist groups (pytest.ini's --dist loadgroup): a test file's tests run on one worker, so that its
    module fixtures are built once, and all the browser tests on one worker, so that two browsers, their apps and
    their runs never compete for the cores at once."""
    for item in items:
        group = "browser" if "e2e" in item.path.parts else str(item.path.relative_to(ROOT))
        item.add_marker(pytest.mark.xdist_group(group))


def assert_evaluations_fit(during: list[dict], budget: float, every_epochs: int, last_step: int) -> None:
    """A budgeted run's evaluations during training, as the engine decides them: sized once (the same count, rounded
    to a hundred), every N epochs, then maybe a closing one at the run's last step; one on the schedule started only
    when it and a closing one, estimated from the one before, fitted in the evaluations' share of the budget. How
    many that makes depends on the machine's speed (a fast one fits more), so the count itself is not checked."""
    from pipelines.metrics.budget import TRAINING_SHARE

    [num] = {e["num_samples"] for e in during}  # one count: their numbers compare
    assert num % 100 == 0
    closing = during[-1]["step"] == last_step
    scheduled = during[:-1] if closing else during
    assert all(e["epoch"] % every_epochs == 0 for e in scheduled)
    seconds = [e["seconds"] for e in during]
    for i in range(1, len(scheduled)):
        assert sum(seconds[:i]) + 2 * seconds[i - 1] <= TRAINING_SHARE * budget + 1e-6, (i, seconds)


def tiny_config(**sections):
    """A DDPM config small enough to train a few steps in about a second on the CPU."""
    raw = {
        "family": "ddpm",
        "data": {"dataset": "digits", "image_size": 8, "channels": 1, "num_samples": 96},
        "model": {"base_channels": 4, "channel_mults": [1, 2], "attention_resolutions": []},
        "diffusion": {"num_train_timesteps": 100},
        "training": {"epochs": 2, "batch_size": 16, "warmup_steps": 2, "checkpoint_every_epochs": 1,
                     "sample_every_epochs": 1, "num_sample_images": 4, "sample_steps": 4, "log_every_steps": 1},
        "evaluation": {"every_epochs": 0, "final": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return validate_config(raw)


@pytest.fixture
def workspace(tmp_path):
    return tmp_path / "ws"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny unconditional run trained once for the sampling tests: (workspace, run folder)."""
    from pipelines.train.run import train

    ws = tmp_path_factory.mktemp("trained")
    row = train(tiny_config(training={"epochs": 6, "learning_rate": 0.003}), ws, progress=False)
    return ws, Path(row["folder"])


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    from pipelines.train.run import train

    ws = tmp_path_factory.mktemp("cond")
    cfg = tiny_config(model={"class_conditional": True}, training={"epochs": 2})
    row = train(cfg, ws, progress=False)
    return ws, Path(row["folder"])


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """A tiny text-to-image run (16 px shapes, one epoch): its run folder."""
    from pipelines.train.run import train
    from tests.train.test_t2i import tiny_t2i

    row = train(tiny_t2i(training={"epochs": 1}), tmp_path_factory.mktemp("t2i"), name="t2i", progress=False)
    return Path(row["folder"])


@pytest.fixture(scope="session")
def sr_model(tmp_path_factory):
    """An untrained x2 ultra-lite super-resolution model folder (it starts as nearest-neighbour upscaling)."""
    import torch

    from pipelines.families.sr.networks import SRArch, initialise
    from pipelines.families.sr.model import save_upscaler_files

    folder = tmp_path_factory.mktemp("sr")
    arch = SRArch("srvgg", 2, num_feat=8, num_conv=2)
    torch.manual_seed(0)
    save_upscaler_files(initialise(arch.build()), arch, folder)
    return folder
