"""CRPS-sum, computed exactly as GluonTS's `MultivariateEvaluator` reports `m_sum_mean_wQuantileLoss`.

The paper (Table 2, appendix F.4) sums every sampled trajectory and the target over the feature dimension,
then scores the summed forecast with GluonTS's quantile losses at 19 levels 0.05..0.95. Our NumPy version
is used in the training loop (validation every epoch, no pandas round trip); `gluonts_crps_sum` calls
GluonTS itself and the tests check that both agree on random forecasts.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

CRPS_QUANTILES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _check_shapes(samples: np.ndarray, targets: np.ndarray) -> None:
    if samples.ndim != 4:
        raise ValueError(f"samples must be [windows, num_samples, time, dim], got shape {samples.shape}")
    if targets.ndim != 3:
        raise ValueError(f"targets must be [windows, time, dim], got shape {targets.shape}")
    if samples.shape[0] != targets.shape[0] or samples.shape[2:] != targets.shape[1:]:
        raise ValueError(f"samples {samples.shape} do not match targets {targets.shape} (windows, time, dim)")
    if samples.shape[1] < 1:
        raise ValueError("samples must hold at least one sample per window")
    if not (np.isfinite(samples).all() and np.isfinite(targets).all()):
        raise ValueError("CRPS-sum got non-finite samples or targets")


def weighted_quantile_losses(
    samples: np.ndarray, targets: np.ndarray, quantiles: tuple[float, ...] = CRPS_QUANTILES
) -> np.ndarray:
    """GluonTS `wQuantileLoss[q]` of univariate forecasts: samples `[W, N, T]`, targets `[W, T]`.

    The sample quantile is GluonTS's nearest rank, sorted_samples[round((N - 1) q)]; QL(q) = 2 sum_t
    |(qhat - z) (1[z <= qhat] - q)| summed over windows, divided by sum over windows and time of |z|.
    """
    samples = np.asarray(samples, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    sorted_samples = np.sort(samples, axis=1)
    num_samples = samples.shape[1]
    abs_target_sum = np.abs(targets).sum()
    if abs_target_sum == 0:
        raise ValueError("CRPS-sum is undefined when every target value is zero (division by sum |z|)")
    losses = []
    for q in quantiles:
        q_hat = sorted_samples[:, int(np.round((num_samples - 1) * q)), :]
        losses.append(2.0 * np.abs((q_hat - targets) * ((targets <= q_hat) - q)).sum())
    return np.asarray(losses) / abs_target_sum


def crps_sum(samples: np.ndarray, targets: np.ndarray, quantiles: tuple[float, ...] = CRPS_QUANTILES) -> float:
    """CRPS-sum of multivariate sample forecasts: samples `[W, N, T, D]`, targets `[W, T, D]` (raw scale)."""
    samples = np.asarray(samples)
    targets = np.asarray(targets)
    _check_shapes(samples, targets)
    return float(weighted_quantile_losses(samples.sum(-1), targets.sum(-1), quantiles).mean())


def gluonts_crps_sum(
    samples: np.ndarray,
    targets: np.ndarray,
    freq: str = "B",
    start: str = "2000-01-03",
    quantiles: tuple[float, ...] = CRPS_QUANTILES,
) -> float:
    """The same number from GluonTS itself (`MultivariateEvaluator`, `m_sum_mean_wQuantileLoss`).

    Each window becomes one `SampleForecast` and a target DataFrame over the same period index.
    """
    import pandas as pd
    from gluonts.evaluation import MultivariateEvaluator
    from gluonts.model.forecast import SampleForecast

    samples = np.asarray(samples)
    targets = np.asarray(targets)
    _check_shapes(samples, targets)
    num_windows, _, horizon, _ = samples.shape
    start_period = pd.Period(start, freq=freq)
    forecasts, series = [], []
    for window in range(num_windows):
        forecast_start = start_period + window * horizon
        forecasts.append(SampleForecast(samples=samples[window], start_date=forecast_start))
        index = pd.period_range(forecast_start, periods=horizon, freq=freq)
        series.append(pd.DataFrame(targets[window], index=index))
    evaluator = MultivariateEvaluator(quantiles=list(quantiles), target_agg_funcs={"sum": np.sum}, num_workers=0)
    # The evaluator draws a tqdm bar per dimension on stderr; keep the CLI's output readable.
    with contextlib.redirect_stderr(io.StringIO()):
        aggregate, _ = evaluator(iter(series), iter(forecasts), num_series=num_windows)
    return float(aggregate["m_sum_mean_wQuantileLoss"])
