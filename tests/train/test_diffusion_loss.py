import torch

from pipelines.config import DiffusionConfig
from pipelines.objectives.ddpm import loss_weights, make_noise_scheduler


def test_min_snr_weighting_is_the_same_objective_for_every_prediction_target():
    """For one x0 prediction error, weighted epsilon, v and x0 losses all equal min(snr, gamma) * |x0 - x0_hat|^2."""
    sched = make_noise_scheduler(DiffusionConfig(beta_schedule="cosine"))
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    t = torch.tensor([1, 50, 200, 500, 800, 990])
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    snr = (a / (1 - a)).flatten()
    xt = sched.add_noise(x0, noise, t)
    x0_hat = x0 + 0.1 * torch.randn(x0.shape, generator=g)
    # The same prediction expressed in each parametrisation.
    eps_hat = (xt - a.sqrt() * x0_hat) / (1 - a).sqrt()
    v_hat = a.sqrt() * eps_hat - (1 - a).sqrt() * x0_hat
    v = sched.get_velocity(x0, noise, t)
    pairs = {"sample": (x0_hat, x0), "epsilon": (eps_hat, noise), "v": (v_hat, v)}
    expected = snr.clamp(max=5.0) * (x0_hat - x0).pow(2).mean(dim=(1, 2, 3))
    for prediction, (pred, target) in pairs.items():
        weighted = loss_weights(snr, prediction, "min_snr", 5.0) * (pred - target).pow(2).mean(dim=(1, 2, 3))
        torch.testing.assert_close(weighted, expected, rtol=1e-3, atol=1e-6, msg=prediction)
    assert (loss_weights(snr, "v", "none", 5.0) == 1).all()


def test_schedules_start_clean_and_end_in_noise():
    for schedule in ("linear", "cosine", "sigmoid"):
        a = make_noise_scheduler(DiffusionConfig(beta_schedule=schedule)).alphas_cumprod
        assert a[0] > 0.99 and a[-1] < 0.01 and (a[1:] <= a[:-1]).all(), schedule
