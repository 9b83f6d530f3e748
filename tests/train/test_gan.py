"""The GAN family on tiny models: losses, g_steps, EMA, augmentation, resume, collapse watch, sampling."""
import numpy as np
import pytest
import torch

from pipelines import checkpoints as ckpt
from pipelines.cli import main
from pipelines.config import ConfigError, validate_config
from pipelines.families.gan.model import generate_gan, interpolate_gan, load_gan
from pipelines.store import RunStore
from pipelines.families.gan.diffaug import diff_augment
from pipelines.families.gan.model import noise
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
    assert row["status"] == "completed" and row["best_metric"] is None  # a GAN's loss does not rank models
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


def test_translation_and_cutout_follow_the_reference_geometry():
    # DiffAugment's reference: shifts of up to 1/8 of the size filled with zeros, and a zeroed square of half
    # the size centred anywhere in the image (clipped at the border).
    torch.manual_seed(0)
    x = torch.rand(64, 1, 32, 32) + 1  # no zeros of its own
    out = diff_augment(x, ["translation"])
    for img, src in zip(out[:, 0], x[:, 0]):
        rows, cols = (img != 0).any(1).nonzero()[:, 0], (img != 0).any(0).nonzero()[:, 0]
        dy = int(rows[0]) if rows[0] > 0 else -(31 - int(rows[-1]))
        dx = int(cols[0]) if cols[0] > 0 else -(31 - int(cols[-1]))
        assert abs(dy) <= 4 and abs(dx) <= 4
        assert torch.equal(torch.roll(src, (dy, dx), (0, 1))[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1],
                           img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    zeroed = (diff_augment(x, ["cutout"]) == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() == 16 * 16 and zeroed.min() >= 8 * 8
    grey = torch.rand(8, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    coloured = diff_augment(grey, ["color"])
    torch.manual_seed(1)
    shift, _, gain = (torch.rand(8, 1, 1, 1) for _ in range(3))  # saturation changes nothing on one channel
    expected = grey + shift - 0.5
    mean = expected.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(coloured, (expected - mean) * (gain + 0.5) + mean, atol=1e-6)


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


def test_losses_on_known_scores():
    from pipelines.families.gan.train import d_loss_fn, g_loss_fn

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_loss_fn("hinge", real, fake, 0.95).item() == pytest.approx(0.5 / 2 + 1 / 2)  # only the ones inside the margin
    assert g_loss_fn("hinge", fake).item() == pytest.approx(1.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(real, torch.full_like(real, 0.95)) + bce(fake, torch.zeros_like(fake))  # smoothed real target
    assert d_loss_fn("nonsaturating", real, fake, 0.95).item() == pytest.approx(expected.item())
    assert g_loss_fn("nonsaturating", fake).item() == pytest.approx(torch.nn.functional.softplus(-fake).mean().item())


def collapse_setup(tmp_path):
    from pipelines.train.evaluation import Evaluator
    from tests.train.test_evaluation import make_trainer

    cfg = tiny_gan(evaluation={"every_epochs": 1, "num_samples": 64, "final": False}, gan={"collapse_rollback": True})
    trainer = make_trainer(tmp_path, cfg)
    return trainer, next(cb for cb in trainer.callbacks if isinstance(cb, Evaluator)), RunStore(tmp_path)


def one_image(family):
    real = family.sample_images
    return lambda num, seed, **kw: np.repeat(real(1, 0), num, axis=0)  # every z, every class: the same image


def test_a_collapsed_generator_raises_a_warning_and_rolls_back(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    trainer, evaluator, store = collapse_setup(tmp_path)
    family = trainer.family
    evaluator.evaluate(trainer)  # a start with some variety: its peak, and best/ is written
    assert not store.get_run("run")["warning"] and (trainer.run.folder / "best").is_dir()
    best_fd = store.get_run("run")["best_value"]
    monkeypatch.setattr(family, "sample_images", one_image(family))
    with torch.no_grad():  # the weights move on; the rollback must bring best/'s back
        for p in trainer.accelerator.unwrap_model(family.generator).parameters():
            p.add_(1.0)
    d_lr = family.d_opt.param_groups[0]["lr"]
    evaluator.evaluate(trainer)
    warning = store.get_run("run")["warning"]
    assert "possible mode collapse" in warning and "variety fell to 0%" in warning and "rolled back to best/" in warning
    assert family.d_opt.param_groups[0]["lr"] == pytest.approx(d_lr / 2)
    best = load_file(trainer.run.folder / "best" / "generator.safetensors")
    raw = trainer.accelerator.unwrap_model(family.generator).state_dict()
    assert all(torch.equal(raw[k], best[k]) for k in best if "original" in k)
    assert store.get_run("run")["best_value"] == best_fd  # the collapsed evaluation did not become best/


def test_a_generator_that_starts_without_variety_is_not_called_collapsed(tmp_path, monkeypatch):
    trainer, evaluator, store = collapse_setup(tmp_path)
    monkeypatch.setattr(trainer.family, "sample_images", one_image(trainer.family))
    evaluator.evaluate(trainer)
    evaluator.evaluate(trainer)
    assert not store.get_run("run")["warning"]


def test_the_ema_generator_gets_its_own_batch_norm_statistics(tmp_path):
    from tests.train.test_evaluation import make_trainer

    trainer = make_trainer(tmp_path, tiny_gan())
    family = trainer.family
    batch = trainer.prepare_batch(family.splits.train.batch(torch.arange(16)))
    for _ in range(3):
        family.optimization_step([batch])
    raw_bn = trainer.accelerator.unwrap_model(family.generator).bn.running_mean.clone()
    before = torch.get_rng_state()
    family.sample_images(4, seed=0)
    assert torch.equal(torch.get_rng_state(), before)  # sampling never draws from the training RNG
    assert not torch.allclose(family.ema.model.bn.running_mean, raw_bn)


def test_truncation_and_interpolation(tmp_path):
    z = noise(8, 32, seed=3, truncation=0.5)
    assert z.abs().max() <= 0.5 and torch.equal(z[1], noise(1, 32, seed=4, truncation=0.5)[0])
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="truncation: must be at least"):
            noise(1, 8, seed=0, truncation=bad)
    row = train(tiny_gan(training={"epochs": 1}), tmp_path, progress=False)
    model = load_gan(f"{row['folder']}/final")
    frames = interpolate_gan(model, 0, 5, frames=5, class_label=3)
    assert frames.shape == (5, 16, 16, 1)
    np.testing.assert_array_equal(frames[0], generate_gan(model, 1, seed=0, class_label=3)[0])
    # Image i is the same whatever the batch it comes in (z and class both follow seed + i).
    np.testing.assert_array_equal(generate_gan(model, 20, seed=0, batch_size=8)[13], generate_gan(model, 1, seed=13)[0])
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
        validate_config({"family": "gan", "data": {"image_size": 16}, "model": {"attention_resolutions": [16]}})
    assert info.value.errors[0][0] == "model.attention_resolutions" and "8 pixels" in info.value.errors[0][1]
    with pytest.raises(ConfigError) as info:
        validate_config({"family": "gan", "early_stopping": {"loss_below": 0.5}})
    assert info.value.errors[0][0] == "early_stopping.loss_below"
    with pytest.raises(ConfigError) as info:
        validate_config({"family": "gan", "gan": {"loss": "wasserstein"}})
    assert info.value.errors[0][0] == "gan.loss"
