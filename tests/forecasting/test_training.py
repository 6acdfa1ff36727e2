"""A tiny real training run on exchange_rate_nips beats the untrained model on CRPS-sum; the CLI end to end."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from df_agent.forecasting.model import ForecastDF, ForecastDFConfig
from df_agent.forecasting.training import TrainingConfig, evaluate_crps_sum, train_forecaster
from df_agent.forecasting.windows import ForecastTask


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def tiny_model(task, transform: str) -> ForecastDF:
    return ForecastDF(ForecastDFConfig(
        target_dim=task.train.shape[1], context_length=task.context_length, prediction_length=task.prediction_length,
        freq="B", lags=task.lags, num_time_features=task.time_features.shape[1], hidden_size=16, mlp_hidden_size=32,
        sampling_steps=5, token_transform=transform,
    ))


def short_horizon(task) -> ForecastTask:
    """The exchange data with 10-step windows, so a test-sized training run sees many of them."""
    return ForecastTask(task.train, task.test, task.time_features, context_length=10, prediction_length=10,
                        lags=task.lags)


def test_tiny_training_improves_crps_sum(exchange_task):
    # "level" tokens (the paper's standardisation): an untrained model forecasts near the training mean. (An
    # untrained "difference" model already forecasts a random walk, which is close to the best one can do on
    # exchange rates, so it is no yardstick for learning.)
    transform, required_gain = "level", 0.7
    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = short_horizon(exchange_task)
    model = tiny_model(task, transform)
    model.fit_normalizers(torch.from_numpy(task.train))
    windows = task.validation_windows(count=10, seed=0)
    untrained = evaluate_crps_sum(model, windows, num_samples=16, seed=0)
    config = TrainingConfig(seed=0, batches_per_epoch=60, max_epochs=3, patience=2, val_num_samples=16,
                            learning_rate=3e-3)
    record = train_forecaster(model, task, config)
    trained = evaluate_crps_sum(model, windows, num_samples=16, seed=0)
    assert record.epochs_run >= 1 and len(record.history) == record.epochs_run
    assert record.best_val_crps_sum == pytest.approx(min(h["val_crps_sum"] for h in record.history))
    assert trained < required_gain * untrained, f"{transform}: untrained {untrained:.5f}, trained {trained:.5f}"


def test_best_epoch_weights_are_restored(exchange_task):
    torch.set_num_threads(1)
    task = short_horizon(exchange_task)
    model = tiny_model(task, "difference")
    record = train_forecaster(model, task, TrainingConfig(seed=2, batches_per_epoch=5, max_epochs=3, patience=3,
                                                          val_num_samples=8, learning_rate=1e-2))
    # Re-scoring the validation windows with the validation seed reproduces the best epoch's score exactly.
    rescored = evaluate_crps_sum(model, task.validation_windows(seed=0), num_samples=8, seed=0)
    assert rescored == pytest.approx(record.best_val_crps_sum, rel=1e-6)


def test_early_stopping_stops_after_patience(exchange_task):
    torch.set_num_threads(1)
    task = short_horizon(exchange_task)
    model = tiny_model(task, "difference")
    config = TrainingConfig(seed=1, batches_per_epoch=1, max_epochs=50, patience=1, val_num_samples=4,
                            learning_rate=0.0, val_sampling_steps=2)
    record = train_forecaster(model, task, config)
    # With a zero learning rate nothing improves after epoch 1, so patience 1 stops at epoch 2.
    assert record.best_epoch == 1 and record.epochs_run == 2


def test_on_validation_sees_each_validated_model_and_extends_its_record(exchange_task):
    torch.set_num_threads(1)
    task = short_horizon(exchange_task)
    model = tiny_model(task, "difference")
    test_windows = task.test_windows()
    calls = []

    def score_test(epoch, judged):
        calls.append(epoch)
        return {"test_crps_sum": evaluate_crps_sum(judged, test_windows, num_samples=4, seed=0, sampling_steps=2)}

    config = TrainingConfig(seed=4, batches_per_epoch=3, max_epochs=3, patience=10, val_num_samples=4,
                            val_sampling_steps=2, learning_rate=1e-2, ema_decay=0.9)
    record = train_forecaster(model, task, config, on_validation=score_test)
    assert calls == [1, 2, 3] and [entry["epoch"] for entry in record.history] == calls
    assert all(np.isfinite(entry["test_crps_sum"]) and entry["test_crps_sum"] > 0 for entry in record.history)
    # The hook scores the weights that are validated and kept (the EMA ones here): re-scoring the restored best
    # model gives the best epoch's test score.
    best = min(record.history, key=lambda entry: entry["val_crps_sum"])
    rescored = evaluate_crps_sum(model, test_windows, num_samples=4, seed=0, sampling_steps=2)
    assert rescored == pytest.approx(best["test_crps_sum"], rel=1e-6)


def test_ema_holdout_validation_and_validation_interval(exchange_task):
    torch.set_num_threads(1)
    task = short_horizon(exchange_task)
    model = tiny_model(task, "difference")
    config = TrainingConfig(seed=3, batches_per_epoch=4, max_epochs=5, patience=10, val_num_samples=4,
                            val_sampling_steps=2, learning_rate=1e-2, ema_decay=0.9, val_windows=12,
                            validate_every=2, val_holdout_steps=200)
    record = train_forecaster(model, task, config)
    # Validations after epochs 2 and 4, and after the last epoch (5) so the final weights are always judged.
    assert [entry["epoch"] for entry in record.history] == [2, 4, 5]
    # The kept weights are the averaged ones of the best validation: re-scoring the 12 held-out windows
    # reproduces it.
    rescored = evaluate_crps_sum(model, task.validation_windows(12, seed=0, holdout_steps=200), num_samples=4,
                                 seed=0, sampling_steps=2)
    assert rescored == pytest.approx(record.best_val_crps_sum, rel=1e-6)
    with pytest.raises(ValueError, match="ema_decay"):
        train_forecaster(model, task, TrainingConfig(ema_decay=1.0))
    with pytest.raises(ValueError, match="validate_every"):
        train_forecaster(model, task, TrainingConfig(validate_every=0))


def test_cli_train_then_eval(exchange, tmp_path):
    from df_agent.cli.main import main

    out = tmp_path / "run"
    code = main(["-q", "forecast", "train", "--dataset", "exchange", "--seed", "3", "4", "--out", str(out),
                 "--hidden-size", "16", "--mlp-hidden-size", "16", "--batches-per-epoch", "3", "--max-epochs", "1",
                 "--val-samples", "4", "--sampling-steps", "4", "--num-samples", "6", "--no-progress"])
    assert code == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["dataset"] == "exchange_rate_nips" and summary["seeds"] == [3, 4]
    scores = [run["crps_sum"] for run in summary["runs"]]
    assert summary["crps_sum_mean"] == pytest.approx(np.mean(scores))
    assert summary["crps_sum_std"] == pytest.approx(np.std(scores))
    for run in summary["runs"]:
        assert run["crps_sum"] == pytest.approx(run["crps_sum_gluonts"], rel=1e-5)

    # Evaluating the folder scores every seed's checkpoint; sampling is seeded (training scores seed S with sampling
    # seed S), so the saved seed-3 checkpoint reproduces the number the training command reported.
    results = tmp_path / "eval.json"
    assert main(["-q", "forecast", "eval", "--checkpoint", str(out), "--out", str(results), "--num-samples", "6",
                 "--seed", "3"]) == 0
    evaluated = json.loads(results.read_text())
    assert evaluated["dataset"] == "exchange_rate_nips" and evaluated["num_samples"] == 6
    assert evaluated["num_checkpoints"] == 2 and "crps_sum_std" in evaluated
    first = evaluated["runs"][0]
    assert first["train_seed"] == 3 and first["crps_sum"] == pytest.approx(first["crps_sum_gluonts"], rel=1e-5)
    assert first["crps_sum"] == pytest.approx(summary["runs"][0]["crps_sum"], rel=1e-6)


def test_cli_reports_a_missing_dataset_and_a_bad_checkpoint(tmp_path, monkeypatch, capfd):
    from data.timeseries import ENV_VAR, find_dataset_dir
    from df_agent.cli.main import main

    if find_dataset_dir("traffic_nips") is not None:
        pytest.skip("traffic_nips happens to be available on this machine")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert main(["forecast", "train", "--dataset", "traffic", "--out", str(tmp_path / "x")]) == 1
    error = capfd.readouterr().err
    assert "traffic_nips" in error and "not available offline" in error
    (tmp_path / "junk").mkdir()
    assert main(["forecast", "eval", "--dataset", "exchange", "--checkpoint", str(tmp_path / "junk"),
                 "--out", str(tmp_path / "r.json")]) == 1
    assert "model.safetensors" in capfd.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_recipe_fills_only_the_options_left_unset():
    import argparse

    from df_agent.cli.forecast_train import RECIPES, add_arguments
    from df_agent.forecasting.training import resolve_recipe

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = resolve_recipe(parser.parse_args(["--out", "x"]), prediction_length=30)
    assert default == {"learning_rate": 1e-3, "max_epochs": 60, "val_sampling_steps": 10, "val_windows": 40,
                       "validate_every": 2, "ema_decay": 0.999, "val_holdout_steps": 300}
    # The holdout is counted in prediction lengths, so an hourly dataset (24 steps) holds out 240 steps.
    assert resolve_recipe(parser.parse_args(["--out", "x"]), prediction_length=24)["val_holdout_steps"] == 240
    paper = resolve_recipe(parser.parse_args(["--out", "x", "--recipe", "paper"]), prediction_length=30)
    assert paper["val_holdout_steps"] == 0 and paper["ema_decay"] == 0.0 and paper["learning_rate"] == 3e-4
    assert paper["val_windows"] is None and paper["validate_every"] == 1
    # Explicit options win over the recipe, including zeros.
    mixed = resolve_recipe(parser.parse_args(["--out", "x", "--recipe", "paper", "--ema-decay", "0.99",
                                              "--val-holdout-steps", "90", "--learning-rate", "5e-4"]), 30)
    assert (mixed["ema_decay"], mixed["val_holdout_steps"], mixed["learning_rate"]) == (0.99, 90, 5e-4)
    assert resolve_recipe(parser.parse_args(["--out", "x", "--val-holdout-steps", "0"]), 30)["val_holdout_steps"] == 0
    assert set(RECIPES) == {"heldout", "paper"}
