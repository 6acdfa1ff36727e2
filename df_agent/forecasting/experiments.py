"""Whole forecasting runs on a loaded dataset: `train_and_test` (one model per seed with early stopping, then the
test CRPS-sum; `df-agent forecast train`) and `score_checkpoints` (the test CRPS-sum of saved models;
`df-agent forecast eval`).

The dataset is a `data.timeseries.MultivariateDataset` (name, freq, prediction_length, train, test) given by the
caller, or for `score_checkpoints` a catalog that loads one by name (`data.timeseries.DatasetCatalog`): the model
package does not read datasets itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from df_agent.forecasting.covariates import lags_for_frequency, num_time_features
from df_agent.forecasting.evaluation import check_compatible, evaluate_test
from df_agent.forecasting.io import load_forecaster, save_forecaster, write_results_json
from df_agent.forecasting.model import ForecastDF, ForecastDFConfig
from df_agent.forecasting.training import TrainingConfig, resolve_recipe, train_forecaster
from df_agent.forecasting.windows import task_from_dataset
from df_agent.provenance import with_provenance

log = logging.getLogger(__name__)


class Datasets(Protocol):
    """Datasets by name (`data.timeseries.DatasetCatalog`)."""

    def canonical_name(self, name: str) -> str: ...

    def load(self, name: str) -> Any: ...


@dataclass(frozen=True)
class ForecastRunSettings:
    """One `train_and_test` call. The training options left None take the `recipe`'s values (`resolve_recipe`)."""

    out: Path  # checkpoint directory (one seed) or the parent of seed_S/ (several)
    seeds: tuple[int, ...] = (0,)
    # model (paper B.9: 4 GRU layers, 1 MLP, v-prediction, cosine schedule)
    hidden_size: int = 64
    num_gru_layers: int = 4
    mlp_hidden_size: int = 128
    series_embedding_dim: int = 4
    clean_token_probability: float = 0.0
    context_length: int | None = None  # None: the prediction length
    sampling_steps: int = 50
    token_transform: str = "difference"
    # training
    recipe: str = "heldout"
    batch_size: int = 32
    batches_per_epoch: int = 100
    patience: int = 6
    val_samples: int = 100
    learning_rate: float | None = None
    max_epochs: int | None = None
    val_sampling_steps: int | None = None
    val_windows: int | None = None
    val_holdout_steps: int | None = None
    validate_every: int | None = None
    ema_decay: float | None = None
    # test
    num_samples: int = 100  # trajectories per test window
    test: bool = True
    progress: bool = True

def _model(dataset: Any, settings: ForecastRunSettings) -> ForecastDF:
    return ForecastDF(ForecastDFConfig(
        target_dim=dataset.target_dim,
        context_length=settings.context_length or dataset.prediction_length,
        prediction_length=dataset.prediction_length,
        freq=dataset.freq,
        lags=lags_for_frequency(dataset.freq),
        num_time_features=num_time_features(dataset.freq),
        hidden_size=settings.hidden_size,
        num_gru_layers=settings.num_gru_layers,
        mlp_hidden_size=settings.mlp_hidden_size,
        series_embedding_dim=settings.series_embedding_dim,
        sampling_steps=settings.sampling_steps,
        token_transform=settings.token_transform,
        clean_token_probability=settings.clean_token_probability,
    ))


def _train_seed(dataset: Any, settings: ForecastRunSettings, seed: int, out_dir: Path,
                training_settings: dict[str, Any], command: Sequence[str] | None) -> dict[str, Any]:
    """Train, save and (unless settings.test is off) test one seed's model; writes OUT_DIR/results.json."""
    torch.manual_seed(seed)
    model = _model(dataset, settings)
    task = task_from_dataset(dataset, model.config.context_length, lags=model.config.level_lags)
    training = TrainingConfig(seed=seed, batch_size=settings.batch_size, batches_per_epoch=settings.batches_per_epoch,
                              patience=settings.patience, val_num_samples=settings.val_samples, **training_settings)
    log.info("seed %d: %d parameters, training into %s", seed, sum(p.numel() for p in model.parameters()), out_dir)
    started = time.perf_counter()
    record = train_forecaster(model, task, training, show_progress=settings.progress)
    metadata = {"dataset": dataset.name, "seed": seed, "recipe": settings.recipe, "training_config": asdict(training),
                "training": record.to_dict()}
    save_forecaster(out_dir, model, metadata)
    result = {"dataset": dataset.name, "seed": seed, "checkpoint": str(out_dir),
              "train_seconds": record.seconds, "best_epoch": record.best_epoch,
              "epochs_run": record.epochs_run, "best_val_crps_sum": record.best_val_crps_sum}
    if settings.test:
        result |= evaluate_test(model, task, settings.num_samples, seed=seed)
    result["total_seconds"] = time.perf_counter() - started
    write_results_json(out_dir / "results.json", with_provenance(result, command))
    log.info("seed %d: best epoch %d, val CRPS-sum %.5f, test CRPS-sum %s, %.0f s", seed, record.best_epoch,
             record.best_val_crps_sum, f"{result['crps_sum']:.5f}" if "crps_sum" in result else "not run",
             result["total_seconds"])
    return result


def train_and_test(dataset: Any, settings: ForecastRunSettings,
                   command: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Train one model per seed, one after another (OUT for one seed, OUT/seed_S/ for several), each with its
    results.json; several seeds also get OUT/results.json with the mean and std of the test CRPS-sum.

    Returns (the per-seed results, that summary or None for one seed). `command` is recorded as the files'
    provenance (None: this process's command line)."""
    log.info("%s: %d series, %d training steps, %d test windows, prediction length %d, lags %s",
             dataset.name, dataset.target_dim, len(dataset.train), len(dataset.test), dataset.prediction_length,
             lags_for_frequency(dataset.freq))
    training_settings = resolve_recipe(settings, dataset.prediction_length)
    log.info("recipe %s: %s", settings.recipe, training_settings)
    several = len(settings.seeds) > 1
    runs = [_train_seed(dataset, settings, seed, settings.out / f"seed_{seed}" if several else settings.out,
                        training_settings, command) for seed in settings.seeds]
    if not several:
        return runs, None
    summary = {"dataset": dataset.name, "seeds": list(settings.seeds), "runs": runs,
               "num_samples": settings.num_samples}
    if settings.test:
        scores = np.asarray([run["crps_sum"] for run in runs])
        summary |= {"crps_sum_mean": float(scores.mean()), "crps_sum_std": float(scores.std(ddof=0)),
                    "crps_sum": float(scores.mean())}
    write_results_json(settings.out / "results.json", with_provenance(summary, command))
    return runs, summary


def score_checkpoints(checkpoints: Sequence[Path], datasets: Datasets, dataset_name: str | None = None,
                      num_samples: int = 100, seed: int = 0, sampling_steps: int | None = None,
                      ddim_eta: float | None = None) -> dict[str, Any]:
    """Test CRPS-sum of every checkpoint on the test set of `dataset_name` (a name or alias in `datasets`), else
    of the one dataset the checkpoints record; sampling_steps / ddim_eta None keep each checkpoint's own.

    Returns {"dataset", "crps_sum", "num_samples", "num_checkpoints", "runs": one record per checkpoint}, plus
    for several checkpoints `crps_sum_mean` and `crps_sum_std` (`crps_sum` is then the mean), for one its
    GluonTS-evaluator score `crps_sum_gluonts`."""
    if num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {num_samples}")
    loaded = [(path, *load_forecaster(path)) for path in checkpoints]
    trained_on = {meta.get("dataset") for _, _, meta in loaded} - {None}
    if dataset_name:
        name = datasets.canonical_name(dataset_name)
    else:
        name = sorted(trained_on)[0] if len(trained_on) == 1 else None
    if name is None:
        raise ValueError("--dataset is required: the checkpoints do not record one common training dataset "
                         f"({sorted(trained_on) or 'none recorded'})")
    if trained_on and trained_on != {name}:
        log.warning("evaluating on %s checkpoints trained on %s", name, ", ".join(sorted(trained_on)))
    dataset = datasets.load(name)
    runs = []
    for path, model, meta in loaded:
        task = task_from_dataset(dataset, context_length=model.config.context_length, lags=model.config.level_lags)
        check_compatible(model, task, dataset.name)
        if ddim_eta is not None:
            if ddim_eta < 0:
                raise ValueError(f"--ddim-eta must be >= 0, got {ddim_eta}")
            model.config.ddim_eta = ddim_eta
        result = {"checkpoint": str(path), "train_seed": meta.get("seed"), "ddim_eta": model.config.ddim_eta}
        result |= evaluate_test(model, task, num_samples, seed=seed, sampling_steps=sampling_steps)
        log.info("%s: CRPS-sum %.5f (GluonTS %.5f)", path, result["crps_sum"], result["crps_sum_gluonts"])
        runs.append(result)
    scores = np.asarray([run["crps_sum"] for run in runs])
    summary = {"dataset": dataset.name, "crps_sum": float(scores.mean()), "num_samples": num_samples,
               "num_checkpoints": len(runs), "runs": runs}
    if len(runs) > 1:
        summary |= {"crps_sum_mean": float(scores.mean()), "crps_sum_std": float(scores.std(ddof=0))}
    else:
        summary["crps_sum_gluonts"] = runs[0]["crps_sum_gluonts"]
    return summary
