"""CRPS-sum: our implementation against GluonTS's MultivariateEvaluator on random forecasts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from df_agent.forecasting.metrics import CRPS_QUANTILES, crps_sum, gluonts_crps_sum, weighted_quantile_losses


@pytest.fixture(autouse=True)
def _quiet_gluonts():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize(
    ("windows", "num_samples", "horizon", "dim", "seed"),
    [(5, 100, 30, 8, 0), (3, 7, 4, 2, 1), (1, 1, 5, 3, 2), (4, 64, 24, 16, 3)],
)
def test_crps_sum_matches_gluonts(windows, num_samples, horizon, dim, seed):
    rng = np.random.default_rng(seed)
    targets = rng.normal(1.0, 0.5, size=(windows, horizon, dim)).astype(np.float32)
    samples = (targets[:, None] + rng.normal(0.2, 0.7, size=(windows, num_samples, horizon, dim))).astype(np.float32)
    ours, theirs = crps_sum(samples, targets), gluonts_crps_sum(samples, targets)
    assert ours > 0
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-9)


def test_crps_sum_matches_gluonts_on_positive_series_with_mixed_signs():
    rng = np.random.default_rng(7)
    targets = rng.normal(0.0, 1.0, size=(2, 10, 5))
    samples = rng.standard_cauchy(size=(2, 50, 10, 5))
    assert crps_sum(samples, targets) == pytest.approx(gluonts_crps_sum(samples, targets), rel=1e-5)


def test_quantiles_are_the_nineteen_levels():
    assert len(CRPS_QUANTILES) == 19
    assert CRPS_QUANTILES[0] == 0.05 and CRPS_QUANTILES[-1] == 0.95
    assert np.allclose(np.diff(CRPS_QUANTILES), 0.05)


def test_perfect_point_forecast_scores_zero_and_biased_one_scores_the_bias():
    targets = np.full((2, 3, 4), 2.0)
    assert crps_sum(np.repeat(targets[:, None], 5, axis=1), targets) == 0.0
    # Every quantile over-forecasts the sum (8) by 4: QL(q) = 2 * 4 * (1 - q) per step, relative to |8|.
    shifted = np.repeat(targets[:, None], 5, axis=1) + 1.0
    expected = np.mean([2 * 4 * (1 - q) / 8 for q in CRPS_QUANTILES])
    assert crps_sum(shifted, targets) == pytest.approx(expected)


def test_nearest_rank_quantile_rule():
    # With N = 3 samples {0, 1, 2}, q = 0.05..0.25 round((N-1)q) to rank 0, 0.3..0.7 to rank 1, 0.75.. to rank 2.
    samples = np.array([[[0.0], [1.0], [2.0]]]).transpose(0, 1, 2)  # [W=1, N=3, T=1]
    target = np.array([[1.0]])
    losses = weighted_quantile_losses(samples, target, (0.1, 0.5, 0.9))
    assert losses == pytest.approx([2 * 1 * 0.1, 0.0, 2 * 1 * 0.1])


def test_bad_shapes_and_values_are_named():
    with pytest.raises(ValueError, match="samples must be"):
        crps_sum(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="do not match"):
        crps_sum(np.ones((2, 5, 3, 4)), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        crps_sum(np.full((1, 2, 3, 1), np.nan), np.ones((1, 3, 1)))
    with pytest.raises(ValueError, match="every target value is zero"):
        crps_sum(np.ones((1, 2, 3, 1)), np.zeros((1, 3, 1)))


def test_random_walk_reference_on_exchange(exchange_task):
    from df_agent.forecasting.baselines import random_walk_samples

    windows = exchange_task.test_windows()
    samples = random_walk_samples(windows, exchange_task.train, num_samples=100, seed=0)
    assert samples.shape == (5, 100, 30, 8)
    # Centred on the last observation, spreading like sqrt(t).
    np.testing.assert_allclose(samples.mean(1)[:, 0], windows.history[:, -1], atol=3e-3)
    spread = samples.sum(-1).std(1).mean(0)
    assert spread[-1] == pytest.approx(spread[0] * np.sqrt(30), rel=0.35)
    # A calibrated random walk is a strong forecaster of exchange rates: far better than the flat point forecast.
    flat = np.repeat(windows.history[:, None, -1:], 30, axis=2)[:, :, :, :]
    assert crps_sum(samples, windows.target) < crps_sum(np.repeat(flat, 2, axis=1), windows.target)
    # The spread scale multiplies the sampled changes (same noise, same seed).
    half = random_walk_samples(windows, exchange_task.train, num_samples=100, seed=0, scale=0.5)
    last = windows.history[:, -1][:, None, None, :]
    np.testing.assert_allclose(half - last, 0.5 * (samples - last), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="scale"):
        random_walk_samples(windows, exchange_task.train, num_samples=2, scale=0.0)
