"""Training, validation and test windows over one multivariate series, with their covariates.

A window is `context_length + prediction_length` consecutive steps plus `max(lags)` steps of history before
it (for the lag covariates). Arrays are raw scale and time-major `[time, D]`; the model normalises.
This module works on arrays only; `data/timeseries.py` loads them from GluonTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from df_agent.forecasting.covariates import lagged_values


@dataclass
class ForecastWindows:
    """Fixed windows to forecast: `history` `[W, context + max_lag, D]`, `time_features`
    `[W, context + prediction, F]`, `target` `[W, prediction, D]`."""

    history: np.ndarray
    time_features: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.history)


@dataclass
class ForecastTask:
    train: np.ndarray  # [T_train, D]
    test: list[np.ndarray]  # each [T_i, D], starting where `train` starts
    time_features: np.ndarray  # [T_max, F] for steps 0..T_max-1 counted from the common start
    context_length: int
    prediction_length: int
    lags: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.train.ndim != 2:
            raise ValueError(f"train must be [time, dim], got shape {self.train.shape}")
        for i, series in enumerate(self.test):
            if series.ndim != 2 or series.shape[1] != self.train.shape[1]:
                raise ValueError(f"test series {i} has shape {series.shape}, expected [time, {self.train.shape[1]}]")
        longest = max([len(self.train), *(len(series) for series in self.test)])
        if len(self.time_features) < longest:
            raise ValueError(f"time_features cover {len(self.time_features)} steps, the data {longest}")
        if not np.isfinite(self.train).all():
            raise ValueError("training series contains NaN or inf (missing values are not supported)")

    @property
    def max_lag(self) -> int:
        return max(self.lags)

    @property
    def window_length(self) -> int:
        return self.context_length + self.prediction_length

    def _start_range(self) -> tuple[int, int]:
        low, high = self.max_lag, len(self.train) - self.window_length
        if high < low:
            raise ValueError(
                f"training series of {len(self.train)} steps is too short for {self.window_length}-step windows "
                f"with {self.max_lag} steps of lag history"
            )
        return low, high

    def training_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Random windows of the training series (Algorithm 1 input, raw scale)."""
        low, high = self._start_range()
        starts = rng.integers(low, high + 1, size=batch_size)
        offsets = np.arange(self.window_length)
        return {
            "tokens": torch.from_numpy(self.train[starts[:, None] + offsets]),
            "lags": torch.from_numpy(lagged_values(self.train, starts, self.window_length, self.lags)),
            "time_features": torch.from_numpy(self.time_features[starts[:, None] + offsets]),
        }

    def windows_at(self, series: list[np.ndarray], starts: np.ndarray) -> ForecastWindows:
        """The window of `series[i]` whose context starts at `starts[i]`."""
        history, features, target = [], [], []
        for values, start in zip(series, np.asarray(starts)):
            start = int(start)
            if start < self.max_lag or start + self.window_length > len(values):
                raise ValueError(f"window at {start} does not fit a series of {len(values)} steps")
            forecast_start = start + self.context_length
            history.append(values[start - self.max_lag : forecast_start])
            features.append(self.time_features[start : start + self.window_length])
            target.append(values[forecast_start : forecast_start + self.prediction_length])
        return ForecastWindows(np.stack(history), np.stack(features), np.stack(target))

    def validation_windows(self, count: int | None = None, seed: int = 0, holdout_steps: int = 0) -> ForecastWindows:
        """A random subset of training windows, as many as there are test windows (pytorch-ts, paper B.9).
        Drawn with their own seed, so runs with different training seeds validate on the same windows.

        With `holdout_steps > 0` the windows' targets lie in the last `holdout_steps` steps of the training
        series (their context may reach back before them), the part `without_tail(holdout_steps)` leaves out
        of training: an out-of-sample check instead of windows the model has been fitted to."""
        count = len(self.test) if count is None else count
        low, high = self._start_range()
        if holdout_steps:
            self._check_holdout(holdout_steps)
            low = max(low, len(self.train) - holdout_steps - self.context_length)
        if count < 1 or high - low + 1 < count:
            raise ValueError(f"the training series cannot hold {count} distinct validation windows"
                             + (f" in its last {holdout_steps} steps" if holdout_steps else ""))
        starts = np.sort(np.random.default_rng(seed).choice(np.arange(low, high + 1), size=count, replace=False))
        return self.windows_at([self.train] * count, starts)

    def without_tail(self, holdout_steps: int) -> ForecastTask:
        """The same task trained on all but the last `holdout_steps` steps (which then serve validation)."""
        self._check_holdout(holdout_steps)
        return ForecastTask(self.train[:-holdout_steps], self.test, self.time_features, self.context_length,
                            self.prediction_length, self.lags)

    def _check_holdout(self, holdout_steps: int) -> None:
        shortest = self.max_lag + self.window_length
        if holdout_steps < self.prediction_length or len(self.train) - holdout_steps < shortest:
            raise ValueError(f"holdout of {holdout_steps} steps: it must cover at least one prediction "
                             f"({self.prediction_length} steps) and leave at least {shortest} of the "
                             f"{len(self.train)} training steps for training")

    def test_windows(self) -> ForecastWindows:
        """Each test series' last `prediction_length` steps, after `context_length` steps of context."""
        if not self.test:
            raise ValueError("this dataset has no test series")
        starts = np.asarray([len(series) - self.window_length for series in self.test])
        return self.windows_at(self.test, starts)


def task_from_dataset(dataset, context_length: int | None = None, lags: tuple[int, ...] | None = None) -> ForecastTask:
    """A `ForecastTask` from a loaded `data.timeseries.MultivariateDataset` with TimeGrad's covariates.

    Context length defaults to the prediction length, as in the paper.
    """
    from df_agent.forecasting.covariates import lags_for_frequency, time_features

    longest = max([len(dataset.train), *(len(series) for series in dataset.test)])
    return ForecastTask(
        train=np.ascontiguousarray(dataset.train, dtype=np.float32),
        test=[np.ascontiguousarray(series, dtype=np.float32) for series in dataset.test],
        time_features=time_features(dataset.time_index(longest)),
        context_length=int(context_length or dataset.prediction_length),
        prediction_length=int(dataset.prediction_length),
        lags=tuple(lags or lags_for_frequency(dataset.freq)),
    )
