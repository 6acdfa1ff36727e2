"""How much of a CRPS-sum score can come from choosing the epoch on the test windows?

Trains one forecaster for a fixed number of epochs (no early stop) and scores, after every validation, both the
validation windows and the test windows. It then reports the test score of the epoch that early stopping on
validation picks (patience as given) next to the best test score of any epoch, which is what choosing the epoch by
its test score would report. With few test windows (5 on exchange) the gap between the two shows how much an
epoch chosen on the test set can flatter a model. Diagnostic only: `df-agent forecast train` never looks at the
test windows while training.

    python scripts/forecast_test_selection_probe.py --recipe paper --epochs 60 --seed 0 --out probe_paper_s0.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path


def early_stopping_choice(history: list[dict], patience: int) -> dict:
    """The record early stopping on `val_crps_sum` ends with (best so far when patience runs out)."""
    best, stale = None, 0
    for record in history:
        if best is None or record["val_crps_sum"] < best["val_crps_sum"]:
            best, stale = record, 0
        else:
            stale += 1
            if stale >= patience:
                break
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="exchange_rate_nips")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--recipe", choices=("paper", "heldout"), default="paper")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-samples", type=int, default=100)
    parser.add_argument("--test-sampling-steps", type=int, default=10, help="DDIM steps of the per-epoch test score")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    import torch

    from data.timeseries import load_dataset
    from df_agent.forecasting.covariates import lags_for_frequency, num_time_features
    from df_agent.forecasting.io import write_results_json
    from df_agent.forecasting.model import ForecastDF, ForecastDFConfig
    from df_agent.forecasting.training import RECIPES, TrainingConfig, evaluate_crps_sum, train_forecaster
    from df_agent.forecasting.windows import task_from_dataset
    from df_agent.provenance import with_provenance

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir)
    torch.manual_seed(args.seed)
    model = ForecastDF(ForecastDFConfig(
        target_dim=dataset.target_dim, context_length=dataset.prediction_length,
        prediction_length=dataset.prediction_length, freq=dataset.freq, lags=lags_for_frequency(dataset.freq),
        num_time_features=num_time_features(dataset.freq),
    ))
    task = task_from_dataset(dataset, model.config.context_length, lags=model.config.level_lags)
    recipe = dict(RECIPES[args.recipe])
    holdout = int(recipe.pop("val_holdout_prediction_lengths")) * dataset.prediction_length
    recipe["max_epochs"] = args.epochs
    config = TrainingConfig(seed=args.seed, patience=args.epochs + 1, val_holdout_steps=holdout, **recipe)
    test_windows = task.test_windows()

    def score_test(epoch: int, judged: ForecastDF) -> dict:
        return {"test_crps_sum": evaluate_crps_sum(judged, test_windows, args.test_samples, seed=0,
                                                   sampling_steps=args.test_sampling_steps)}

    started = time.perf_counter()
    record = train_forecaster(model, task, config, on_validation=score_test)
    history = record.history
    chosen = early_stopping_choice(history, args.patience)
    best_test = min(history, key=lambda r: r["test_crps_sum"])
    summary = {
        "dataset": dataset.name, "recipe": args.recipe, "seed": args.seed, "epochs": args.epochs,
        "patience": args.patience, "test_sampling_steps": args.test_sampling_steps,
        "early_stopping_epoch": chosen["epoch"], "early_stopping_test_crps_sum": chosen["test_crps_sum"],
        "test_selected_epoch": best_test["epoch"], "test_selected_crps_sum": best_test["test_crps_sum"],
        "last_epoch_test_crps_sum": history[-1]["test_crps_sum"],
        "seconds": time.perf_counter() - started, "history": history,
    }
    write_results_json(args.out, with_provenance(summary))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
