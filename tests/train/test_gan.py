"""The GAN family on tiny models: losses, g_steps, EMA, augmentation, resume, collapse watch, sampling."""
import numpy as np
import pytest
import torch

from pipelines import checkpoints as ckpt
from pipelines.cli import main
from pipelines.config import ConfigError, validate_config
from pipelines.sample.gan import generate_gan, interpolate_gan, load_gan
from pipelines.store import RunStore
from pipelines.train.diffaug import diff_augment
from pipelines.train.gan import noise
from pipelines.train.run import train
from tests.train.test_training import StopAt


def tiny_gan(**sections):
    raw = {
        "family": "gan",
        "data": {"dataset": "digits", "image_size": 16, "channels": 1, "num_samples": 96},
        "model": {"z_dim": 16, "g_channels": 8, "d_channels": 8, "attention_resolutions": [8]},
        "gan": {"warmup_epochs": 1},
        "training": {"epochs": 2, "batch_size": 16, "checkpoint_every_epochs": 1, "sample_every_epochs": 1,
                     "num_sample_images": 4, "log_every_steps": 1, "ema_decay": 0.9},
        "evaluation": {"every_epochs": 0, "final": False},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return validate_config(raw)


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_each_loss_trains_logs_the_balance_and_exports_a_generator(tmp_path, loss):
    row = train(tiny_gan(gan={"loss": loss}), tmp_path, progress=False)
    assert row["status"] == "completed" and row["best_metric"] == "loss"
    logged = {m["name"] for m in RunStore(tmp_path).metrics(row["name"])}
    assert {"d_loss", "g_loss", "d_real", "d_fake", "lr", "d_lr"} <= logged
    values = [m["value"] for m in RunStore(tmp_path).metrics(row["name"], ["d_real", "d_fake"])]
    assert all(0 <= v <= 1 for v in values)
    model = load_gan(f"{row['folder']}/final")
    assert model.num_classes == 10 and ckpt.read_meta(f"{row['folder']}/final")["family"] == "gan"
    images = generate_gan(model, num=10, seed=0)
    assert images.shape == (10, 16, 16, 1) and images.std() > 1  # not blank


def test_g_steps_gives_the_generator_that_many_updates_per_discriminator_update(tmp_path):
    from tests.train.test_evaluation import make_trainer

    trainer = make_trainer(tmp_path, tiny_gan(gan={"g_steps": 3}))
    family = trainer.family
    batch = trainer.prepare_batch(family.splits.train.batch(torch.arange(8)))
    family.optimization_step([batch])
    g_step = next(iter(family.g_opt.state.values()))["step"]
    d_step = next(iter(family.d_opt.state.values()))["step"]
    assert (int(g_step), int(d_step)) == (3, 1)


def test_exports_and_samples_use_the_ema_generator(tmp_path):
    row = train(tiny_gan(training={"ema_decay": 0.99, "epochs": 1}), tmp_path, progress=False)
    state = ckpt.load_training_state(ckpt.list_checkpoints(row["folder"])[-1])["family"]
    exported = load_gan(f"{row['folder']}/final").generator.state_dict()
    name = "fc.parametrizations.weight.original"
    assert torch.equal(exported[name], state["ema"]["weights"][name])
    assert not torch.equal(exported[name], state["generator"][name])  # the raw generator moved further


def test_augmentation_changes_images_keeps_gradients_and_trains(tmp_path):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = diff_augment(x, ["color", "translation", "cutout"])
    assert out.shape == x.shape and not torch.equal(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the generator learns through it
    assert torch.equal(diff_augment(x, []), x)
    row = train(tiny_gan(gan={"augment": True}), tmp_path, progress=False)
    assert row["status"] == "completed"


def test_stop_then_resume_equals_training_straight_through(tmp_path):
    cfg = tiny_gan(training={"epochs": 4})
    straight = train(cfg, tmp_path / "a", progress=False)
    stopped = train(cfg, tmp_path / "b", progress=False, extra_callbacks=[StopAt(step=7)])
    assert stopped["status"] == "stopped"
    resumed = train(resume=tmp_path / "b" / stopped["name"], progress=False)
    assert resumed["step"] == straight["step"]
    a, b = (ckpt.load_training_state(ckpt.list_checkpoints(tmp_path / d / straight["name"])[-1])["family"] for d in "ab")
    for part in ("generator", "discriminator"):
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], rtol=1e-5, atol=1e-6, msg=f"{part}.{k} differs")


def test_a_collapsed_generator_raises_a_warning_and_can_roll_back(tmp_path):
    from pipelines.train.collapse import CollapseWatch
    from pipelines.train.evaluation import Evaluator
    from tests.train.test_evaluation import make_trainer

    cfg = tiny_gan(evaluation={"every_epochs": 1, "num_samples": 64, "final": False}, gan={"collapse_rollback": True})
    trainer = make_trainer(tmp_path, cfg)
    family, store = trainer.family, RunStore(tmp_path)
    evaluator = next(cb for cb in trainer.callbacks if isinstance(cb, Evaluator))
    assert any(isinstance(cb, CollapseWatch) for cb in trainer.callbacks)
    evaluator.evaluate(trainer)  # a healthy start: its variety is the peak, and best/ is written
    assert not store.get_run("run")["warning"] and (trainer.run.folder / "best").is_dir()
    with torch.no_grad():  # every z gives the same image: a forced collapse
        for gen in (family.ema.model, trainer.accelerator.unwrap_model(family.generator)):
            gen.fc.parametrizations.weight.original.zero_()
    d_lr = family.d_opt.param_groups[0]["lr"]
    evaluator.evaluate(trainer)
    warning = store.get_run("run")["warning"]
    assert "possible mode collapse" in warning and "variety fell to 0%" in warning and "rolled back to best/" in warning
    assert family.d_opt.param_groups[0]["lr"] == pytest.approx(d_lr / 2)
    assert family.ema.model.fc.parametrizations.weight.original.abs().sum() > 0  # best/'s weights are back


def test_truncation_and_interpolation(tmp_path):
    z = noise(8, 32, seed=3, truncation=0.5)
    assert z.abs().max() <= 0.5 and torch.equal(z[1], noise(1, 32, seed=4, truncation=0.5)[0])
    row = train(tiny_gan(training={"epochs": 1}), tmp_path, progress=False)
    model = load_gan(f"{row['folder']}/final")
    frames = interpolate_gan(model, 0, 5, frames=5, class_label=3)
    assert frames.shape == (5, 16, 16, 1)
    np.testing.assert_array_equal(frames[0], generate_gan(model, 1, seed=0, class_label=3)[0])
    out = tmp_path / "out.png"
    assert main(["sample", "--checkpoint", f"{row['folder']}/final", "--num", "8", "--truncation", "1.0", "--out", str(out)]) == 0
    assert out.stat().st_size > 100
    assert main(["sample", "--checkpoint", f"{row['folder']}/final", "--interpolate", "--frames", "4", "--out", str(tmp_path / "walk")]) == 0
    assert (tmp_path / "walk.gif").exists()


def test_gan_config_errors_name_the_field():
    with pytest.raises(ConfigError) as info:
        validate_config({"family": "gan", "data": {"image_size": 24}})
    assert info.value.errors[0][0] == "data.image_size"
    with pytest.raises(ConfigError) as info:
        validate_config({"family": "gan", "gan": {"loss": "wasserstein"}})
    assert info.value.errors[0][0] == "gan.loss"
