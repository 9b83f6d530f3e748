import numpy as np
import pytest
from PIL import Image

from pipelines.api import SampleRequest, interpolate, load, sample
from pipelines.sample.diffusion import SAMPLERS, Cancelled, slerp
from pipelines.sample.images import save_output


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_gives_non_blank_images_of_the_right_shape(trained_run, sampler):
    _, folder = trained_run
    images = sample(load(folder / "final"), sampler=sampler, steps=10, num=3, seed=0)
    assert images.shape == (3, 8, 8, 1) and images.dtype == np.uint8
    assert images.std() > 10 and len(np.unique(images)) > 10


def test_image_i_uses_seed_plus_i_whatever_the_batch(trained_run):
    model = load(trained_run[1] / "final")
    four = sample(model, sampler="ddim", steps=8, num=4, seed=10)
    one = sample(model, sampler="ddim", steps=8, num=1, seed=12)
    np.testing.assert_allclose(four[2].astype(int), one[0].astype(int), atol=2)
    assert np.abs(four[0].astype(int) - four[1].astype(int)).mean() > 5  # different seeds differ


def test_sampling_uses_the_checkpoint_s_own_schedule(tmp_path):
    """A sigmoid schedule is not built into every diffusers sampler; the training betas are passed on."""
    from pipelines.config import DiffusionConfig
    from pipelines.sample.diffusion import make_noise_scheduler, make_sampler

    train_sched = make_noise_scheduler(DiffusionConfig(beta_schedule="sigmoid", prediction="epsilon"))
    for name in SAMPLERS:
        s = make_sampler(name, train_sched)
        np.testing.assert_allclose(s.alphas_cumprod.numpy(), train_sched.alphas_cumprod.numpy(), rtol=1e-6)
        assert s.config.prediction_type == "epsilon"
        # DDIM and DDPM clip their predicted image only where training does (sample prediction): their default
        # clipping washed out a guided v-prediction model's colours.
        assert s.config.get("clip_sample", False) == train_sched.config.clip_sample


def test_interpolation_end_frames_equal_the_two_seeds_samples(trained_run):
    model = load(trained_run[1] / "final")
    frames = interpolate(model, SampleRequest(seed=3, steps=8), 7, frames=5)
    assert frames.shape == (5, 8, 8, 1)
    a = sample(model, sampler="ddim", steps=8, num=1, seed=3)[0]
    b = sample(model, sampler="ddim", steps=8, num=1, seed=7)[0]
    np.testing.assert_allclose(frames[0].astype(int), a.astype(int), atol=2)
    np.testing.assert_allclose(frames[-1].astype(int), b.astype(int), atol=2)
    assert np.abs(frames[2].astype(int) - a.astype(int)).mean() > 1  # the middle is something else


def test_slerp_keeps_the_norm_of_gaussian_noise():
    import torch

    a, b = torch.randn(1000, generator=torch.Generator().manual_seed(0)), torch.randn(1000, generator=torch.Generator().manual_seed(1))
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() / a.norm() - 1) < 0.05  # linear interpolation would shrink it by about 0.7


def test_class_and_guidance_on_a_conditional_model(conditional_run):
    model = load(conditional_run[1] / "final")
    assert model.num_classes == 10
    images = sample(model, sampler="dpm++", steps=6, num=2, seed=0, class_label=3, guidance=3.0)
    assert images.shape == (2, 8, 8, 1) and images.std() > 5
    with pytest.raises(ValueError, match="class: must be between 0 and 9"):
        sample(model, num=1, class_label=10)


def test_progress_callback_counts_steps_and_can_cancel(trained_run):
    model = load(trained_run[1] / "final")
    seen = []
    sample(model, sampler="ddim", steps=5, num=3, batch_size=2, callback=lambda info: seen.append((info["step"], info["total"])))
    assert seen[-1] == (10, 10) and len(seen) == 10
    with pytest.raises(Cancelled):
        sample(model, sampler="ddim", steps=5, num=1, callback=lambda info: info["step"] < 2)


def test_output_forms(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(np.load(save_output(images, tmp_path / "a.npy")), images)
    folder = save_output(images, tmp_path / "pngs")
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:04d}.png" for i in range(5)]
    assert np.array_equal(np.asarray(Image.open(folder / "0003.png")), images[3])
    grid = Image.open(save_output(images, tmp_path / "grid.png"))
    assert grid.size[0] > 64 * 3  # three columns, enlarged for viewing


def test_loading_something_that_is_not_a_checkpoint_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no diffusers UNet"):
        load(tmp_path)


def test_a_bare_unet_folder_uses_the_schedule_beside_it(trained_run):
    model = load(trained_run[1] / "final" / "unet")
    assert model.scheduler.config.prediction_type == "v_prediction" and model.meta["run"] == "ddpm-digits-8"


@pytest.mark.parametrize("kwargs, message", [({"steps": 0}, "steps: must be at least 1 and at most 1000, got 0"),
                                             ({"num": -2}, "num: must be at least 1"),
                                             ({"guidance": float("nan")}, "guidance: must be a finite number, got nan"),
                                             ({"seed": -1}, "seed: must be at least 0")])
def test_bad_numbers_are_refused_naming_the_field(trained_run, kwargs, message):
    model = load(trained_run[1] / "final")
    with pytest.raises(ValueError, match=message):
        sample(model, **{"sampler": "ddim", "steps": 3, "num": 2, **kwargs})
    with pytest.raises(ValueError, match="frames: must be at least 2"):
        interpolate(model, SampleRequest(seed=0, steps=3), 1, frames=1)
