import threading

import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, UNet2DModel

from pipelines import checkpoints as ckpt
from pipelines.store import RunStore
from pipelines.train.callbacks import Callback
from pipelines.families.ddpm.train import DDPMFamily
from pipelines.train.run import train
from tests.conftest import tiny_config


def test_a_run_writes_checkpoints_samples_plot_log_and_store_rows(trained_run):
    ws, folder = trained_run
    run = RunStore(ws).get_run(folder.name)
    assert folder.name == "ddpm-digits-8"
    assert run["status"] == "completed" and run["step"] == run["total_steps"] > 0 and run["best_metric"] == "loss"
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["checkpoint-25", "checkpoint-30"]  # keep_last 2
    for sub in ("best", "final", "checkpoint-30"):
        assert (folder / sub / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (folder / "checkpoint-30" / "training_state.pt").exists() and not (folder / "final" / "training_state.pt").exists()
    assert sorted(p.name for p in (folder / "samples").iterdir()) == [f"epoch_{i}.png" for i in range(1, 7)]
    assert (folder / "plots" / "loss.png").stat().st_size > 1000
    log = (folder / "log.txt").read_text()
    assert "data digits: " in log and "saved final" in log
    metrics = RunStore(ws).metrics(folder.name)
    assert {"loss", "lr", "grad_norm", "images_per_s"} <= {m["name"] for m in metrics}
    losses = [m["value"] for m in metrics if m["name"] == "loss"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])  # the loss went down
    assert {a["kind"] for a in RunStore(ws).artifacts(folder.name)} == {"samples"}


def test_second_run_gets_a_suffixed_name(tmp_path):
    cfg = tiny_config(training={"epochs": 1}, data={"num_samples": 32})
    names = [train(cfg, tmp_path, progress=False)["name"] for _ in range(2)]
    assert names == ["ddpm-digits-8", "ddpm-digits-8-2"]


def test_stock_diffusers_loads_and_samples_an_unconditional_final(trained_run):
    _, folder = trained_run
    pipe = DDPMPipeline.from_pretrained(folder / "final")
    images = pipe(batch_size=2, num_inference_steps=10, output_type="np", generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 8, 8, 1) and images.std() > 0.05


def test_a_conditional_final_loads_with_unet2dmodel(conditional_run):
    _, folder = conditional_run
    unet = UNet2DModel.from_pretrained(folder / "final" / "unet")
    assert unet.config.num_class_embeds == 11  # ten digits and the "no label" of guidance
    assert ckpt.read_meta(folder / "final")["class_names"] == [str(i) for i in range(10)]


class StopAt(Callback):
    def __init__(self, epoch=None, step=None):
        self.epoch, self.step = epoch, step

    def on_step_end(self, trainer, logs):
        if self.step is not None and trainer.state.global_step == self.step:
            trainer.request_stop("stop requested")

    def on_epoch_end(self, trainer):
        if self.epoch is not None and trainer.state.epoch == self.epoch:
            trainer.request_stop("stop requested")


def final_state(folder):
    return ckpt.load_training_state(ckpt.list_checkpoints(folder)[-1])["family"]


@pytest.mark.parametrize("stop", [{"epoch": 2}, {"step": 9}], ids=["at-epoch-end", "mid-epoch"])
def test_stop_then_resume_equals_training_straight_through(tmp_path, stop):
    cfg = tiny_config(training={"epochs": 4}, data={"random_flip": True}, model={"dropout": 0.1})
    straight = train(cfg, tmp_path / "a", progress=False)
    stopped = train(cfg, tmp_path / "b", progress=False, extra_callbacks=[StopAt(**stop)])
    assert stopped["status"] == "stopped" and stopped["step"] < straight["step"]
    assert not (tmp_path / "b" / stopped["name"] / "final").exists()
    resumed = train(resume=tmp_path / "b" / stopped["name"], progress=False)
    assert resumed["status"] == "completed" and resumed["step"] == straight["step"]
    a, b = final_state(tmp_path / "a" / straight["name"]), final_state(tmp_path / "b" / stopped["name"])
    for part in ("model", "ema"):
        wa = a[part] if part == "model" else a[part]["weights"]
        wb = b[part] if part == "model" else b[part]["weights"]
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=f"{part}.{k} differs")


def test_nan_loss_steps_are_skipped_then_fail_the_run_naming_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = DDPMFamily.compute_loss
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        loss, logs = real(self, batch)
        return (loss * float("nan"), logs) if calls["n"] > 8 else (loss, logs)

    monkeypatch.setattr(DDPMFamily, "compute_loss", poisoned)
    with pytest.raises(Exception, match="3 steps in a row were skipped"):
        train(tiny_config(training={"epochs": 4, "max_skipped_steps": 3}), tmp_path, progress=False)
    row = RunStore(tmp_path).list_runs()[0]
    assert row["status"] == "failed" and "loss nan" in row["error"] and "last good checkpoint is checkpoint-10/" in row["error"]
    folder = tmp_path / row["name"]
    # Steps 9-11 were skipped: checkpoint-10 (an epoch end among them) holds the finite weights of step 8.
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["checkpoint-5", "checkpoint-10"]
    for p in ckpt.list_checkpoints(folder):
        state = ckpt.load_training_state(p)
        assert all(torch.isfinite(v).all() for v in state["family"]["model"].values())


def test_an_interrupted_save_leaves_no_complete_looking_checkpoint(tmp_path, monkeypatch):
    def crash(folder, state):
        (folder / "training_state.pt").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_training_state", crash)
    with pytest.raises(OSError, match="disk full"):
        train(tiny_config(training={"epochs": 2}), tmp_path, progress=False)
    folder = tmp_path / "ddpm-digits-8"
    assert ckpt.list_checkpoints(folder) == []
    assert not list(folder.glob("checkpoint-*")) and not list(folder.glob(".tmp-*"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.resolve_resume(folder)


def test_a_killed_write_is_cleaned_up_and_ignored(tmp_path):
    folder = tmp_path / "run"
    (folder / ".tmp-checkpoint-9-1234" / "unet").mkdir(parents=True)
    (folder / ".old-best-1234").mkdir()  # killed between the two renames: the old best is restored
    (folder / ".old-best-1234" / "studio.json").write_text("{}")
    assert ckpt.list_checkpoints(folder) == []
    ckpt.clean_partial(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["best"]


def test_time_budget_ends_the_run_as_completed_with_final(tmp_path):
    row = train(tiny_config(training={"epochs": 1000, "max_minutes": 0.0001}), tmp_path, progress=False)
    assert row["status"] == "completed" and row["step"] < row["total_steps"]
    assert row["end_reason"] == "time budget" and row["budget_ends_at"] > row["started_at"] and row["phase"] is None
    assert (tmp_path / row["name"] / "final" / "model_index.json").exists()
    assert ckpt.list_checkpoints(tmp_path / row["name"])  # resumable with more epochs


def test_stop_requested_through_the_store_from_another_thread(tmp_path):
    store = RunStore(tmp_path)
    stopper = threading.Thread(target=lambda: [store.request_stop(r["name"]) for r in store.list_runs()])

    class StopViaStoreAt(Callback):
        def on_step_end(self, trainer, logs):
            if trainer.state.global_step == 3:
                stopper.start()
                stopper.join()

    cfg = tiny_config(training={"epochs": 50})
    row = train(cfg, tmp_path, progress=False, extra_callbacks=[StopViaStoreAt()])
    assert row["status"] == "stopped" and row["step"] == 4  # asked during step 3, honoured after the next one
    assert ckpt.resolve_resume(tmp_path / row["name"])


def test_auto_batch_size_shrinks_until_it_fits_and_keeps_the_effective_batch():
    from accelerate import Accelerator

    from pipelines.data import load_splits
    from pipelines.train.loop import Trainer
    from pipelines.train.precision import Precision

    cfg = tiny_config(training={"batch_size": 16, "gradient_accumulation_steps": 2})
    family = DDPMFamily(cfg, load_splits(cfg.data), Accelerator(cpu=True), Precision("no", torch.device("cpu")))
    trainer = Trainer(family, cfg, run=None)
    tried = []

    def fits(batch_size):
        tried.append(batch_size)
        if batch_size > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")  # what torch raises on a full GPU

    trainer.fit_batch_size(fits)
    assert tried[0] == 16 and tried == sorted(tried, reverse=True) and tried[-1] == 4
    assert (trainer.micro_batch, trainer.accumulation) == (4, 8)  # 16 x 2 = 4 x 8
    assert trainer.state.steps_per_epoch == 86 // 4 // 8


def test_data_smaller_than_one_effective_batch_still_trains(tmp_path):
    cfg = tiny_config(data={"num_samples": 12}, training={"batch_size": 16, "gradient_accumulation_steps": 4, "epochs": 2})
    row = train(cfg, tmp_path, progress=False)
    assert row["status"] == "completed" and row["step"] == row["total_steps"] == 2


def test_resuming_an_older_checkpoint_sets_the_newer_ones_aside(tmp_path):
    cfg = tiny_config(training={"epochs": 4, "keep_last": 10})
    row = train(cfg, tmp_path, progress=False)
    folder = tmp_path / row["name"]
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["checkpoint-5", "checkpoint-10", "checkpoint-15", "checkpoint-20"]
    train(resume=folder / "checkpoint-10", overrides=["training.keep_last=2"], progress=False)
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["checkpoint-15", "checkpoint-20"]
    assert (folder / "abandoned-checkpoint-15").is_dir() and (folder / "abandoned-checkpoint-20").is_dir()
    assert "the newer checkpoint-20 is set aside" in (folder / "log.txt").read_text()
