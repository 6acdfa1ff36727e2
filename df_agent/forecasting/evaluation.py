"""Test-set evaluation: forecast every test window and score CRPS-sum (ours and GluonTS's)."""

from __future__ import annotations

import time

import numpy as np

from df_agent.forecasting.baselines import random_walk_samples
from df_agent.forecasting.metrics import crps_sum, gluonts_crps_sum
from df_agent.forecasting.model import ForecastDF
from df_agent.forecasting.training import forecast_samples
from df_agent.forecasting.windows import ForecastTask


def check_compatible(model: ForecastDF, task: ForecastTask, dataset_name: str) -> None:
    cfg = model.config
    if cfg.target_dim != task.train.shape[1]:
        raise ValueError(f"the checkpoint forecasts {cfg.target_dim} series but {dataset_name} has "
                         f"{task.train.shape[1]}")
    if cfg.prediction_length != task.prediction_length:
        raise ValueError(f"the checkpoint forecasts {cfg.prediction_length} steps but {dataset_name} asks for "
                         f"{task.prediction_length}")
    if tuple(cfg.level_lags) != tuple(task.lags) or cfg.num_time_features != task.time_features.shape[1]:
        raise ValueError(f"the checkpoint's inputs (observation lags {cfg.level_lags}, {cfg.num_time_features} time "
                         f"features) do not match {dataset_name}'s (lags {task.lags}, "
                         f"{task.time_features.shape[1]} time features)")


def evaluate_test(
    model: ForecastDF, task: ForecastTask, num_samples: int = 100, seed: int = 0, sampling_steps: int | None = None
) -> dict:
    """CRPS-sum on the test windows; `crps_sum_gluonts` is the same forecasts scored by GluonTS's evaluator and
    `crps_sum_random_walk` the reference score of a Gaussian random walk fitted to the training split."""
    windows = task.test_windows()
    started = time.perf_counter()
    samples = forecast_samples(model, windows, num_samples, seed, sampling_steps)
    seconds = time.perf_counter() - started
    return {
        "crps_sum": crps_sum(samples, windows.target),
        "crps_sum_gluonts": gluonts_crps_sum(samples, windows.target),
        "num_samples": int(num_samples),
        "num_windows": len(windows),
        "sampling_steps": int(sampling_steps or model.config.sampling_steps),
        "sampling_seconds": seconds,
        "sample_mean_abs_error": float(np.abs(samples.mean(1).sum(-1) - windows.target.sum(-1)).mean()),
        "crps_sum_random_walk": crps_sum(random_walk_samples(windows, task.train, num_samples, seed), windows.target),
    }
