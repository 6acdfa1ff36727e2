"""Multivariate time-series datasets of the paper's Table 2, loaded through GluonTS.

Windows and covariates are built from the arrays by `df_agent.forecasting.windows`.

Every dataset is one long multivariate training series plus a set of rolling test windows (GluonTS's
`MultivariateGrouper` turns the per-item univariate entries into `[dim, time]` targets). GluonTS normally
downloads these; our build machines cannot, so a dataset is looked for, in order, in

1. the `data_dir` argument (the CLI's `--data-dir`),
2. the directory named by the environment variable `DF_AGENT_TIMESERIES_DIR`,
3. GluonTS's own cache (`~/.gluonts/datasets`),
4. the shared offline copy beside the repository (`<repo>/../shared/data/timeseries`),

each time either as `<root>/<name>/` (GluonTS cache layout) or `<root>/gluonts_cache_<name>/` (the shared
copy's folder name). Only when none holds it and `download=True` does GluonTS fetch it from the network.
A dataset that is found nowhere raises `DatasetUnavailableError`, which names every place looked at.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENV_VAR = "DF_AGENT_TIMESERIES_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_COPY = REPO_ROOT.parent / "shared" / "data" / "timeseries"

# Short names used in the paper -> GluonTS repository names used by TimeGrad and the paper.
DATASET_ALIASES: dict[str, str] = {
    "exchange": "exchange_rate_nips",
    "solar": "solar_nips",
    "electricity": "electricity_nips",
    "traffic": "traffic_nips",
    "taxi": "taxi_30min",
    "wikipedia": "wiki-rolling_nips",
}
PAPER_DATASETS: tuple[str, ...] = tuple(DATASET_ALIASES.values())


class DatasetUnavailableError(FileNotFoundError):
    """The dataset is in no local folder and could not (or may not) be downloaded."""


def canonical_name(name: str) -> str:
    """`exchange` -> `exchange_rate_nips`; a GluonTS repository name passes through unchanged."""
    name = DATASET_ALIASES.get(name, name)
    if name not in PAPER_DATASETS:
        from gluonts.dataset.repository.datasets import dataset_recipes

        if name not in dataset_recipes:
            known = ", ".join(sorted(set(DATASET_ALIASES) | set(PAPER_DATASETS)))
            raise ValueError(f"unknown time-series dataset {name!r}; the paper's datasets are: {known}")
    return name


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for a dataset, in priority order (see the module docstring)."""
    from gluonts.dataset.repository.datasets import default_dataset_path

    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]).expanduser())
    roots.append(Path(default_dataset_path))
    roots.append(SHARED_COPY)
    return roots


def _is_gluonts_dataset_dir(path: Path) -> bool:
    return (path / "metadata.json").is_file() and (path / "train").is_dir() and (path / "test").is_dir()


def find_dataset_dir(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first folder holding `name` in GluonTS's cache layout, or None."""
    name = canonical_name(name)
    for root in search_roots(data_dir):
        for candidate in (root / name, root / f"gluonts_cache_{name}"):
            if _is_gluonts_dataset_dir(candidate):
                return candidate
    return None


@dataclass
class MultivariateDataset:
    """One grouped dataset, raw scale, time-major arrays.

    `train`: `[T_train, D]`; `test`: rolling test series `[T_i, D]`, each starting at `start` like the
    training series, whose last `prediction_length` steps are the forecast target.
    """

    name: str
    freq: str
    prediction_length: int
    start: object  # pandas.Period of the first step (shared by train and test series)
    train: np.ndarray
    test: list[np.ndarray] = field(default_factory=list)
    source: str = ""

    @property
    def target_dim(self) -> int:
        return int(self.train.shape[1])

    def time_index(self, length: int):
        """The pandas PeriodIndex of the first `length` steps."""
        import warnings

        import pandas as pd

        with warnings.catch_warnings():
            # pandas 2.2 deprecates business-day periods, but GluonTS itself hands us a Period start.
            warnings.simplefilter("ignore", FutureWarning)
            return pd.period_range(self.start, periods=length, freq=self.freq)


def _group(train_entries, test_entries, metadata) -> tuple[np.ndarray, list[np.ndarray], object]:
    from gluonts.dataset.multivariate_grouper import MultivariateGrouper

    target_dim = int(metadata.feat_static_cat[0].cardinality) if metadata.feat_static_cat else len(train_entries)
    num_test_dates = len(test_entries) // target_dim
    if num_test_dates * target_dim != len(test_entries):
        raise ValueError(f"test split has {len(test_entries)} series, not a multiple of the dimension {target_dim}")
    train_grouped = list(MultivariateGrouper(max_target_dim=target_dim)(train_entries))
    test_grouped = list(MultivariateGrouper(num_test_dates=num_test_dates, max_target_dim=target_dim)(test_entries))
    if len(train_grouped) != 1:
        raise ValueError(f"expected one grouped training series, got {len(train_grouped)}")
    train = np.asarray(train_grouped[0]["target"], dtype=np.float32).T
    test = [np.asarray(entry["target"], dtype=np.float32).T for entry in test_grouped]
    starts = {str(entry["start"]) for entry in test_grouped} | {str(train_grouped[0]["start"])}
    if len(starts) != 1:
        raise ValueError(f"train and test series start at different dates: {sorted(starts)}")
    return train, test, train_grouped[0]["start"]


def _load_from_dir(name: str, folder: Path) -> MultivariateDataset:
    """Load through `gluonts.dataset.repository.get_dataset(name, path=...)` with no network.

    `get_dataset` wants `<path>/<name>/`; a folder under another name is linked into a temporary cache.
    The entries are materialised inside the `with` because GluonTS reads its files lazily.
    """
    from gluonts.dataset.repository import get_dataset

    with tempfile.TemporaryDirectory(prefix="df_agent_gluonts_") as tmp, warnings.catch_warnings():
        # GluonTS's grouper builds business-day PeriodIndexes (deprecated in pandas 2.2) and suggests orjson;
        # neither concerns our data.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Using `json`-module", category=UserWarning)
        cache = folder.parent
        if folder.name != name:
            cache = Path(tmp)
            (cache / name).symlink_to(folder.resolve(), target_is_directory=True)
        dataset = get_dataset(name, path=cache, regenerate=False)
        train, test, start = _group(list(dataset.train), list(dataset.test), dataset.metadata)
        freq, prediction_length = dataset.metadata.freq, int(dataset.metadata.prediction_length)
    return MultivariateDataset(name, freq, prediction_length, start, train, test, source=str(folder))


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> MultivariateDataset:
    """Load a GluonTS multivariate dataset offline (or download it when allowed and absent)."""
    name = canonical_name(name)
    folder = find_dataset_dir(name, data_dir)
    if folder is not None:
        log.info("loading %s from %s", name, folder)
        return _load_from_dir(name, folder)
    looked = ", ".join(str(root) for root in search_roots(data_dir))
    if not download:
        raise DatasetUnavailableError(
            f"time-series dataset {name!r} is not available offline (looked for {name}/ and gluonts_cache_{name}/ "
            f"in: {looked}); pass --data-dir / set {ENV_VAR}, or allow downloading (--download) with network access"
        )
    from gluonts.dataset.repository import get_dataset
    from gluonts.dataset.repository.datasets import default_dataset_path

    log.info("downloading %s into the GluonTS cache %s", name, default_dataset_path)
    try:
        get_dataset(name, regenerate=False)
    except Exception as error:  # GluonTS surfaces URLError, HTTPError, OSError... all mean "not obtainable"
        raise DatasetUnavailableError(f"could not download time-series dataset {name!r}: {error}") from error
    return _load_from_dir(name, Path(default_dataset_path) / name)


@dataclass(frozen=True)
class DatasetCatalog:
    """The datasets `load_dataset` finds looking in `data_dir` first (or downloads, when `download`), by name or
    alias: what `df_agent.forecasting.experiments.score_checkpoints` loads its test set from."""

    data_dir: str | Path | None = None
    download: bool = False

    def canonical_name(self, name: str) -> str:
        return canonical_name(name)

    def load(self, name: str) -> MultivariateDataset:
        return load_dataset(name, self.data_dir, download=self.download)


def available_datasets(data_dir: str | Path | None = None) -> Iterator[str]:
    """The paper's datasets present offline."""
    for name in PAPER_DATASETS:
        if find_dataset_dir(name, data_dir) is not None:
            yield name
