"""DDIM / DDPM against the closed-form optimal denoiser of Gaussian data: exact targets, tight tolerances."""

from __future__ import annotations

import pytest
import torch

from df_agent.diffusion import NoiseSchedule, Parameterization, ddim_step, to_eps, to_x0, training_target
from df_agent.diffusion.parameterization import from_x0
from df_agent.diffusion.weighting import clean_history_fused_snr_weights, fused_snr_weights, min_snr_weights
from df_agent.sampler import SamplerConfig, sample
from df_agent.scheduling import full_sequence, steps_to_levels
from tests.df_agent.gaussian_model import GaussianOptimalModel

MEAN = torch.tensor([1.5, -0.5], dtype=torch.float64)
COV = torch.tensor([[0.30, 0.12], [0.12, 0.20]], dtype=torch.float64)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_schedules_are_monotone_and_clean_at_zero(name):
    schedule = NoiseSchedule(name, 1000)
    alpha_bar = schedule.alphas_cumprod
    assert alpha_bar[0] == 1.0
    assert bool((alpha_bar[1:] < alpha_bar[:-1]).all())
    assert float(alpha_bar[-1]) < 1e-3  # level K is (almost) pure noise
    with pytest.raises(ValueError, match=r"0\.\.1000"):
        schedule.alpha_bar(torch.tensor([1001]))


def test_linear_schedule_matches_ddpm_betas():
    schedule = NoiseSchedule("linear", 1000)
    betas = 1 - schedule.alphas_cumprod[1:] / schedule.alphas_cumprod[:-1]
    assert float(betas[0]) == pytest.approx(1e-4, rel=1e-9)
    assert float(betas[-1]) == pytest.approx(0.02, rel=1e-9)


@pytest.mark.parametrize("param", ["x0", "eps", "v"])
def test_parameterisation_conversions_are_exact(param):
    schedule = NoiseSchedule("cosine", 1000)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn(64, 5, 3, dtype=torch.float64, generator=generator)
    noise = torch.randn(64, 5, 3, dtype=torch.float64, generator=generator)
    k = torch.randint(1, 1000, (64, 5), generator=generator)
    x_k = schedule.q_sample(x0, k, noise)
    target = training_target(param, x0, noise, k, schedule)
    torch.testing.assert_close(to_x0(param, target, x_k, k, schedule), x0, rtol=0, atol=1e-8)
    torch.testing.assert_close(from_x0(param, x0, x_k, k, schedule), target, rtol=0, atol=1e-8)
    torch.testing.assert_close(to_eps(x0, x_k, k, schedule), noise, rtol=0, atol=1e-8)


def test_ddim_step_to_zero_returns_x0_and_copy_corner_case():
    schedule = NoiseSchedule("linear", 1000)
    x_k, x0 = torch.randn(4, 3), torch.randn(4, 3)
    k = torch.tensor([500, 500, 0, 1000])
    out = ddim_step(x_k, x0, k, torch.tensor([0, 500, 0, 1000]), schedule)
    torch.testing.assert_close(out[0], x0[0])
    torch.testing.assert_close(out[1:], x_k[1:])  # stays at its level: copied
    with pytest.raises(ValueError, match="only lowers"):
        ddim_step(x_k, x0, k, torch.tensor([600, 500, 0, 1000]), schedule)


def test_resample_corner_case_renoises_from_x0():
    schedule = NoiseSchedule("linear", 1000)
    x0 = torch.full((20000, 1), 2.0, dtype=torch.float64)
    x_k = torch.zeros_like(x0)
    k = torch.full((20000,), 300)
    out = ddim_step(x_k, x0, k, k, schedule, stay_policy="resample")
    a = float(schedule.alpha_bar(torch.tensor(300)))
    assert float(out.mean()) == pytest.approx(2.0 * a**0.5, abs=0.02)
    assert float(out.std()) == pytest.approx((1 - a) ** 0.5, abs=0.02)


def _sample_gaussian(schedule: str, param: str, eta: float, steps: int) -> torch.Tensor:
    model = GaussianOptimalModel(MEAN, COV, schedule=schedule, param=param)
    levels = steps_to_levels(full_sequence(2, steps), steps, 1000)
    generator = torch.Generator().manual_seed(0)
    z = model.init_latent(torch.zeros(4000, 1))
    result = sample(model, levels, z, config=SamplerConfig(eta=eta), generator=generator)
    return result.tokens.reshape(-1, 2).double()


@pytest.mark.parametrize("schedule", ["linear", "cosine", "sigmoid"])
@pytest.mark.parametrize("param", ["x0", "eps", "v"])
def test_ddim_with_optimal_denoiser_recovers_gaussian(schedule, param):
    # Deterministic DDIM shrinks the variance of narrow data at coarse steps (measured: linear, 20 / 50 /
    # 200 steps -> var 0.231 / 0.271 / 0.294 for a true 0.30), so test the converged regime tightly.
    samples = _sample_gaussian(schedule, param, eta=0.0, steps=200)
    torch.testing.assert_close(samples.mean(0), MEAN, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(samples.T), COV, rtol=0, atol=0.015)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_ancestral_sampling_with_optimal_denoiser_recovers_gaussian(schedule):
    # eta = 1 is the DDPM posterior; it is exact only step by step (coarse eta=1 steps ignore the
    # uncertainty of x0 and inflate the variance), so use every level.
    samples = _sample_gaussian(schedule, "eps", eta=1.0, steps=1000)
    torch.testing.assert_close(samples.mean(0), MEAN, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(samples.T), COV, rtol=0, atol=0.02)


def test_min_snr_and_fused_snr_weights():
    schedule = NoiseSchedule("sigmoid", 1000)
    k = torch.tensor([[0, 10, 500, 1000]])
    weight = min_snr_weights(k, schedule, Parameterization.X0, clip=5.0)
    assert float(weight[0, 0]) == pytest.approx(5.0) and float(weight[0, -1]) < 1e-3
    # Fused SNR: a clean predecessor raises the weight of a very noisy token above plain min-SNR.
    fused = fused_snr_weights(torch.tensor([[0, 1000], [1000, 1000]]), schedule, "x0", clip=5.0, decay=0.8)
    plain = min_snr_weights(torch.tensor([[0, 1000]]), schedule, "x0", clip=5.0)
    assert float(fused[0, 1]) > float(plain[0, 1]) + 0.5
    assert float(fused[1, 1]) < 1e-3
    assert torch.allclose(fused[:, 0], min_snr_weights(torch.tensor([[0], [1000]]), schedule, "x0")[:, 0])


@pytest.mark.parametrize("param", ["x0", "eps", "v"])
def test_clean_history_weights_are_fused_weights_of_a_clean_history(param):
    schedule = NoiseSchedule("sigmoid", 1000)
    k = torch.tensor([[1000, 500, 1000, 100, 900, 0], [20, 999, 300, 700, 1000, 1000]])
    weights = clean_history_fused_snr_weights(k, schedule, param, clip=5.0, decay=0.8)
    for t in range(k.shape[1]):
        # Token t behind t clean tokens, scored by the general fused weighting.
        levels = torch.cat([torch.zeros(2, t, dtype=torch.long), k[:, t : t + 1]], dim=1)
        torch.testing.assert_close(weights[:, t], fused_snr_weights(levels, schedule, param, 5.0, 0.8)[:, -1])
    # Teacher forcing's pure-noise tokens (predicted from the clean history alone) keep a large weight, where
    # plain min-SNR gives them almost none; the first token has no history and gets plain min-SNR.
    assert float(clean_history_fused_snr_weights(k, schedule, "x0")[0, 2]) > 1.5
    torch.testing.assert_close(weights[:, 0], min_snr_weights(k[:, :1], schedule, param)[:, 0])
    with pytest.raises(ValueError, match="decay"):
        clean_history_fused_snr_weights(k, schedule, param, decay=1.0)
