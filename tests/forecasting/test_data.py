"""GluonTS loading (offline copy, data-dir / env var, clear errors), covariates and windows."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from data.timeseries import (
    ENV_VAR,
    DatasetCatalog,
    DatasetUnavailableError,
    canonical_name,
    find_dataset_dir,
    load_dataset,
)
from df_agent.forecasting.covariates import lagged_values, lags_for_frequency, num_time_features, time_features


def test_exchange_grouped_like_the_paper(exchange):
    # Table 3 of the paper: 8 series, business days, 6,071 training steps, prediction length 30.
    assert exchange.name == "exchange_rate_nips"
    assert exchange.freq == "B" and exchange.prediction_length == 30
    assert exchange.train.shape == (6071, 8) and exchange.train.dtype == np.float32
    assert [len(series) for series in exchange.test] == [6101, 6131, 6161, 6191, 6221]
    # Rolling test windows extend the training series: their first 6071 steps are the training data.
    for series in exchange.test:
        np.testing.assert_array_equal(series[:6071], exchange.train)
    assert str(exchange.start) == "1990-01-01"


def test_data_dir_and_env_var_with_a_gluonts_cache_copy(exchange, tmp_path, monkeypatch):
    source = find_dataset_dir("exchange_rate_nips")
    cache = tmp_path / "cache"
    shutil.copytree(source, cache / "exchange_rate_nips")
    from_arg = load_dataset("exchange", data_dir=cache)
    assert from_arg.source == str(cache / "exchange_rate_nips")
    np.testing.assert_array_equal(from_arg.train, exchange.train)
    monkeypatch.setenv(ENV_VAR, str(cache))
    assert find_dataset_dir("exchange_rate_nips") == cache / "exchange_rate_nips"


def test_a_catalog_loads_by_name_or_alias_from_its_data_dir(exchange, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(find_dataset_dir("exchange_rate_nips"), cache / "exchange_rate_nips")
    catalog = DatasetCatalog(data_dir=cache)
    assert catalog.canonical_name("exchange") == "exchange_rate_nips"
    loaded = catalog.load("exchange")
    assert loaded.name == "exchange_rate_nips" and loaded.source == str(cache / "exchange_rate_nips")
    np.testing.assert_array_equal(loaded.train, exchange.train)


def test_missing_dataset_is_reported_with_the_places_searched(tmp_path, monkeypatch):
    if find_dataset_dir("solar_nips") is not None:
        pytest.skip("solar_nips happens to be available on this machine")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match=r"solar_nips.*not available offline.*--data-dir"):
        load_dataset("solar")


def test_unknown_dataset_name():
    assert canonical_name("wikipedia") == "wiki-rolling_nips"
    with pytest.raises(ValueError, match="unknown time-series dataset 'no_such_data'"):
        canonical_name("no_such_data")


def test_time_features_for_business_days():
    index = pd.bdate_range("2024-01-01", periods=5)  # Monday..Friday
    features = time_features(index)
    assert features.shape == (5, num_time_features("B")) == (5, 4)
    # Day of week as (cos, sin) of 2 pi d / 7, Monday = 0.
    np.testing.assert_allclose(features[:, 0], np.cos(2 * np.pi * np.arange(5) / 7), atol=1e-6)
    np.testing.assert_allclose(features[:, 1], np.sin(2 * np.pi * np.arange(5) / 7), atol=1e-6)
    # Day of year 1..5 over 366.
    np.testing.assert_allclose(features[:, 3], np.sin(2 * np.pi * np.arange(1, 6) / 366), atol=1e-6)


def test_lags_and_features_by_frequency():
    assert lags_for_frequency("B") == (1, 2)
    assert lags_for_frequency("H") == (1, 24, 168)
    assert lags_for_frequency("30min") == (1, 4, 12, 24, 48)
    assert lags_for_frequency("D") == (1, 7, 14)
    assert num_time_features("H") == 4 and num_time_features("30min") == 6
    with pytest.raises(ValueError, match="frequency"):
        lags_for_frequency("not-a-frequency")


def test_lagged_values_are_earlier_steps():
    series = np.arange(40, dtype=np.float32).reshape(20, 2)
    lagged = lagged_values(series, np.array([3, 5]), length=4, lags=(1, 3))
    assert lagged.shape == (2, 4, 4)
    np.testing.assert_array_equal(lagged[0, :, :2], series[2:6])
    np.testing.assert_array_equal(lagged[1, :, 2:], series[2:6])
    with pytest.raises(ValueError, match="max lag 3"):
        lagged_values(series, np.array([2]), length=4, lags=(1, 3))


def test_training_batch_shapes_and_covariates(exchange_task):
    task = exchange_task
    assert (task.context_length, task.prediction_length, task.lags) == (30, 30, (1, 2))
    batch = task.training_batch(np.random.default_rng(0), 32)
    assert batch["tokens"].shape == (32, 60, 8)
    assert batch["lags"].shape == (32, 60, 16)
    assert batch["time_features"].shape == (32, 60, 4)
    # Lag 1 at step t is the token at t - 1; lag 2 is two steps back.
    np.testing.assert_array_equal(batch["lags"][:, 1:, :8], batch["tokens"][:, :-1])
    np.testing.assert_array_equal(batch["lags"][:, 2:, 8:], batch["tokens"][:, :-2])


def test_validation_windows_come_from_the_training_range(exchange_task):
    task = exchange_task
    validation = task.validation_windows(seed=0)
    assert len(validation) == len(task.test) == 5
    assert validation.history.shape == (5, 32, 8)
    assert validation.time_features.shape == (5, 60, 4)
    assert validation.target.shape == (5, 30, 8)
    # Every validation window is a piece of the training series (history followed by target, contiguous).
    train = task.train
    for history, target in zip(validation.history, validation.target):
        window = np.concatenate([history, target])
        starts = np.flatnonzero((train[: len(train) - len(window) + 1] == window[0]).all(1))
        assert any(np.array_equal(train[s : s + len(window)], window) for s in starts)
    np.testing.assert_array_equal(task.validation_windows(seed=0).target, validation.target)
    assert not np.array_equal(task.validation_windows(seed=1).target, validation.target)


def test_holdout_validation_is_out_of_sample(exchange_task):
    task, holdout = exchange_task, 300
    validation = task.validation_windows(count=40, seed=0, holdout_steps=holdout)
    training = task.without_tail(holdout)
    assert len(training.train) == len(task.train) - holdout
    tail = task.train[-holdout:]
    for target in validation.target:
        # Each target is a contiguous piece of the held-out tail ...
        assert any(np.array_equal(tail[s : s + 30], target) for s in range(holdout - 30 + 1))
    # ... and training batches never reach into it (the truncated series is all they read).
    batch = training.training_batch(np.random.default_rng(0), 256)
    assert batch["tokens"].shape == (256, 60, 8)
    with pytest.raises(ValueError, match="holdout of 10 steps"):
        task.validation_windows(count=1, holdout_steps=10)
    with pytest.raises(ValueError, match="cannot hold 400 distinct validation windows in its last 300 steps"):
        task.validation_windows(count=400, holdout_steps=holdout)


def test_test_windows_are_the_last_prediction_steps(exchange_task, exchange):
    windows = exchange_task.test_windows()
    assert windows.target.shape == (5, 30, 8)
    for i, series in enumerate(exchange.test):
        np.testing.assert_array_equal(windows.target[i], series[-30:])
        np.testing.assert_array_equal(windows.history[i], series[-62:-30])
        np.testing.assert_array_equal(windows.time_features[i], exchange_task.time_features[len(series) - 60 :
                                                                                             len(series)])
