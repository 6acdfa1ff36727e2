"""Fixtures for the forecasting tests: the offline exchange_rate_nips copy, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def exchange():
    from data.timeseries import find_dataset_dir, load_dataset

    if find_dataset_dir("exchange_rate_nips") is None:
        pytest.skip("exchange_rate_nips is not available offline (expected ../shared/data/timeseries beside the repo)")
    return load_dataset("exchange_rate_nips")


@pytest.fixture(scope="session")
def exchange_task(exchange):
    from df_agent.forecasting.windows import task_from_dataset

    return task_from_dataset(exchange)
