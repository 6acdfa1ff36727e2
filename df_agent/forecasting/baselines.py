"""A reference forecaster: the Gaussian random walk, whose CRPS-sum puts the learned models' numbers in context.

Exchange rates are close to random walks, so "tomorrow = today + N(0, Sigma)" with Sigma the covariance of the
training split's daily changes is the natural yardstick on `exchange_rate_nips`.
"""

from __future__ import annotations

import numpy as np

from df_agent.forecasting.windows import ForecastWindows


def random_walk_samples(
    windows: ForecastWindows, train: np.ndarray, num_samples: int, seed: int = 0, scale: float = 1.0
) -> np.ndarray:
    """Samples `[W, num_samples, T, D]`: the last observation plus cumulated N(0, scale^2 Sigma) changes."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    changes = np.diff(np.asarray(train, dtype=np.float64), axis=0)
    covariance = np.atleast_2d(np.cov(changes, rowvar=False))
    # Cholesky needs a positive-definite matrix; a tiny ridge covers constant or collinear series.
    factor = np.linalg.cholesky(covariance + 1e-12 * np.eye(len(covariance)) * max(np.trace(covariance), 1e-12))
    num_windows, horizon, dim = windows.target.shape
    noise = np.random.default_rng(seed).standard_normal((num_windows, num_samples, horizon, dim))
    last = windows.history[:, -1].astype(np.float64)
    return last[:, None, None, :] + np.cumsum(scale * (noise @ factor.T), axis=2)
