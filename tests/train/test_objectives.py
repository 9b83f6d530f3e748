"""The diffusion objectives (ddpm, flow, edm): each trains, samples with each of its samplers, saves a folder that
reloads and samples the same, loads in stock diffusers where claimed, resumes exactly, and refuses others' options."""
import math

import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, EDMDPMSolverMultistepScheduler, UNet2DModel

from pipelines.config import ConfigError, validate_config
from pipelines.families.ddpm.model import generate, interpolate, load_diffusion
from pipelines.objectives import SAMPLERS_BY_OBJECTIVE, make_sampler
from pipelines.objectives.edm import EDMHeunScheduler, karras_sigmas
from pipelines.sample.diffusion import denoise
from pipelines.store import RunStore
from pipelines.train.run import train
from tests.train.test_training import StopAt, final_state

OBJECTIVES = ("ddpm", "flow", "edm")


def objective_config(objective: str, **training):
    """tiny_config's run (8 px digits, a (4, 8) UNet) with `objective` and its own defaults."""
    return validate_config({
        "family": "ddpm",
        "data": {"dataset": "digits", "image_size": 8, "channels": 1, "num_samples": 96, "random_flip": True},
        "model": {"base_channels": 4, "channel_mults": [1, 2], "attention_resolutions": [], "dropout": 0.1},
        "diffusion": {"objective": objective},
        "training": {"epochs": 4, "batch_size": 16, "warmup_steps": 2, "checkpoint_every_epochs": 1, "learning_rate": 0.003,
                     "sample_every_epochs": 4, "num_sample_images": 4, "sample_steps": 4, "log_every_steps": 1, **training},
        "evaluation": {"every_epochs": 0, "final": False},
    })


@pytest.fixture(scope="module", params=OBJECTIVES)
def objective_run(request, tmp_path_factory):
    ws = tmp_path_factory.mktemp(request.param)
    row = train(objective_config(request.param, epochs=8), ws, progress=False)
    return request.param, ws, ws / row["name"]


def test_each_objective_trains_with_a_falling_loss_and_every_sampler_draws_images(objective_run):
    objective, ws, folder = objective_run
    losses = [m["value"] for m in RunStore(ws).metrics(folder.name) if m["name"] == "loss"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    model = load_diffusion(folder / "final")
    assert model.objective == objective
    for sampler in SAMPLERS_BY_OBJECTIVE[objective]:
        images = generate(model, sampler, steps=4, num=4, seed=0)
        assert images.shape == (4, 8, 8, 1) and images.std() > 5, f"{sampler}: blank images"
        assert np.isfinite(images).all()


def test_a_saved_folder_reloads_and_samples_what_the_run_sampled(objective_run, tmp_path):
    objective, _, folder = objective_run
    a, b = load_diffusion(folder / "final"), load_diffusion(folder / "final")
    sampler = SAMPLERS_BY_OBJECTIVE[objective][0]
    np.testing.assert_array_equal(generate(a, sampler, 6, 3, seed=5), generate(b, sampler, 6, 3, seed=5))
    frames = interpolate(a, 1, 2, frames=3, steps=4)  # the objective's deterministic sampler
    np.testing.assert_array_equal(frames[0], interpolate(b, 1, 1, frames=1, steps=4)[0])


def test_stock_diffusers_samples_a_flow_folder_with_ddpmpipeline(objective_run):
    objective, _, folder = objective_run
    if objective != "flow":
        pytest.skip("flow only: DDPMPipeline samples a FlowMatchEulerDiscreteScheduler folder as it is")
    pipe = DDPMPipeline.from_pretrained(folder / "final")
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    images = pipe(batch_size=2, num_inference_steps=8, output_type="np", generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 8, 8, 1) and images.std() > 0.02


def test_stock_diffusers_samples_an_edm_folder_as_the_model_card_says(objective_run):
    objective, _, folder = objective_run
    if objective != "edm":
        pytest.skip("edm only")
    unet = UNet2DModel.from_pretrained(folder / "final" / "unet")
    scheduler = EDMDPMSolverMultistepScheduler.from_pretrained(folder / "final" / "scheduler")
    # The loop of the model card: plain diffusers, nothing of the studio.
    scheduler.set_timesteps(8)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(unet(scheduler.scale_model_input(x, t), t).sample, t, x).prev_sample
    ours = torch.from_numpy(generate(load_diffusion(folder / "final"), "dpm++", 8, 2, seed=0)).float()
    assert x.std() > 0.1 and torch.isfinite(x).all()
    # The same model and sampler: the same brightness and spread as the studio's samples.
    assert abs(((x.clamp(-1, 1) + 1) * 127.5).mean() - ours.mean()) < 40


@pytest.mark.parametrize("objective", ["flow", "edm"])
def test_stop_then_resume_equals_training_straight_through(tmp_path, objective):
    cfg = objective_config(objective, epochs=3)
    straight = train(cfg, tmp_path / "a", progress=False)
    stopped = train(cfg, tmp_path / "b", progress=False, extra_callbacks=[StopAt(step=7)])
    assert stopped["status"] == "stopped"
    resumed = train(resume=tmp_path / "b" / stopped["name"], progress=False)
    assert resumed["step"] == straight["step"]
    a, b = final_state(tmp_path / "a" / straight["name"]), final_state(tmp_path / "b" / stopped["name"])
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6, msg=f"model.{k} differs")


@pytest.mark.parametrize("raw, field", [
    ({"objective": "flow", "prediction": "epsilon"}, "diffusion.prediction"),
    ({"objective": "edm", "shift": 3.0}, "diffusion.shift"),
    ({"objective": "ddpm", "p_mean": 0.0}, "diffusion.p_mean"),
    ({"objective": "flow", "logit_std": 0}, "diffusion.logit_std"),
])
def test_an_option_of_another_objective_is_refused_naming_the_field(raw, field):
    with pytest.raises(ConfigError) as err:
        validate_config({"family": "ddpm", "diffusion": raw})
    assert [f for f, _ in err.value.errors] == [field]


def test_a_sampler_the_objective_cannot_use_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as err:
        validate_config({"family": "ddpm", "diffusion": {"objective": "edm"}, "evaluation": {"sampler": "ddim"}})
    assert err.value.errors[0][0] == "evaluation.sampler" and "heun" in err.value.errors[0][1]


def test_edm_heun_follows_the_rho_7_steps_and_takes_two_evaluations_per_step_but_the_last():
    heun = EDMHeunScheduler(0.002, 80.0, 0.5)
    heun.set_timesteps(5)
    assert len(heun.timesteps) == 2 * 5 - 1
    sigmas = karras_sigmas(5)
    assert math.isclose(sigmas[0], 80.0, rel_tol=1e-5) and math.isclose(sigmas[-2], 0.002, rel_tol=1e-4) and sigmas[-1] == 0


def test_edm_samplers_reach_the_data_when_the_denoiser_is_exact():
    """With data a single image x0, the ideal EDM network gives D(x) = x0 at every sigma: every sampler lands on x0."""
    sigma_data, x0 = 0.5, torch.full((1, 1, 4, 4), 0.3)
    saved = EDMDPMSolverMultistepScheduler(sigma_data=sigma_data, prediction_type="epsilon")

    class Exact(torch.nn.Module):  # F such that c_skip x + c_out F = x0, from the scaled input and c_noise
        device, dtype = torch.device("cpu"), torch.float32

        def forward(self, scaled, c_noise, **_):
            sigma = torch.exp(4 * c_noise)
            total = sigma ** 2 + sigma_data ** 2
            x = scaled * total.sqrt()
            out = (x0 - sigma_data ** 2 / total * x) / (sigma * sigma_data / total.sqrt())
            return type("Out", (), {"sample": out})

    for name in SAMPLERS_BY_OBJECTIVE["edm"]:
        x = denoise(Exact(), make_sampler(name, saved), torch.randn(1, 1, 4, 4), 6)
        torch.testing.assert_close(x, x0, atol=2e-3, rtol=0, msg=name)


def test_the_configs_sampler_lists_are_the_objectives_own():
    from pipelines.objectives import MODULES

    for name, module in MODULES.items():
        assert set(SAMPLERS_BY_OBJECTIVE[name]) == set(module.SAMPLERS), name
