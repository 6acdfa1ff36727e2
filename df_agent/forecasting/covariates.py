"""TimeGrad's covariates: lagged target values and Fourier time features chosen by the data frequency.

TimeGrad (pytorch-ts, which the paper follows for covariates, appendix F.4) picks a few lags and a few
calendar features per frequency, each calendar feature encoded as a (cos, sin) pair. pytorch-ts divides by
the largest value seen in the window; we divide by the feature's fixed period so a feature's encoding does
not depend on which dates happen to be in a batch. The third TimeGrad covariate, the learned series-index
embedding, lives in the model (`ForecastDF.series_embedding`).
"""

from __future__ import annotations

import warnings

import numpy as np

# Frequency "granularity" (pandas offset name, hourly/minutely unified) -> calendar attributes, as pytorch-ts.
FOURIER_FEATURES: dict[str, tuple[str, ...]] = {
    "M": ("weekofyear",),
    "W": ("daysinmonth", "weekofyear"),
    "D": ("dayofweek",),
    "B": ("dayofweek", "dayofyear"),
    "H": ("hour", "dayofweek"),
    "min": ("minute", "hour", "dayofweek"),
}
LAGS: dict[str, tuple[int, ...]] = {
    "M": (1, 12),
    "W": (1,),
    "D": (1, 7, 14),
    "B": (1, 2),
    "H": (1, 24, 168),
    "min": (1, 4, 12, 24, 48),
}
PERIODS: dict[str, int] = {
    "minute": 60,
    "hour": 24,
    "dayofweek": 7,
    "daysinmonth": 31,
    "dayofyear": 366,
    "weekofyear": 53,
}


def granularity(freq: str) -> str:
    """'B' -> 'B', 'H'/'h' -> 'H', '30min'/'T' -> 'min', 'W-SUN' -> 'W', 'M'/'ME' -> 'M'."""
    from pandas.tseries.frequencies import to_offset

    try:
        with warnings.catch_warnings():
            # GluonTS metadata spells hourly "H", which pandas 2.2 deprecates in favour of "h"; both mean hourly.
            warnings.simplefilter("ignore", FutureWarning)
            name = to_offset(freq).name
    except ValueError as error:
        raise ValueError(f"unrecognised time-series frequency {freq!r}: {error}") from None
    name = name.split("-")[0]
    name = {"h": "H", "ME": "M", "MS": "M", "T": "min"}.get(name, name)
    if name not in FOURIER_FEATURES:
        raise ValueError(f"no TimeGrad covariates defined for frequency {freq!r} (granularity {name!r})")
    return name


def lags_for_frequency(freq: str) -> tuple[int, ...]:
    return LAGS[granularity(freq)]


def num_time_features(freq: str) -> int:
    return 2 * len(FOURIER_FEATURES[granularity(freq)])


def time_features(index) -> np.ndarray:
    """`[len(index), 2 * n_features]` float32 (cos, sin) pairs for a pandas PeriodIndex/DatetimeIndex."""
    columns = []
    for attribute in FOURIER_FEATURES[granularity(index.freqstr)]:
        values = np.asarray(getattr(index, attribute), dtype=np.float64)
        phase = 2.0 * np.pi * values / PERIODS[attribute]
        columns += [np.cos(phase), np.sin(phase)]
    return np.stack(columns, axis=-1).astype(np.float32)


def lagged_values(series: np.ndarray, starts: np.ndarray, length: int, lags: tuple[int, ...]) -> np.ndarray:
    """For windows `series[s : s + length]`, the values `lag` steps earlier: `[B, length, D * len(lags)]`.

    Column block j holds lag `lags[j]` for every feature. Every window needs `max(lags)` steps of history.
    """
    starts = np.asarray(starts)
    if starts.size and int(starts.min()) < max(lags):
        raise ValueError(f"window start {int(starts.min())} leaves fewer than max lag {max(lags)} steps of history")
    offsets = np.arange(length)
    blocks = [series[(starts[:, None] - lag) + offsets[None, :]] for lag in lags]
    return np.concatenate(blocks, axis=-1)
