"""Whole forecasting runs (`df_agent.forecasting.experiments`): train-and-test per seed, scoring checkpoints."""

from __future__ import annotations

import json
import logging

import pytest

from data.timeseries import DatasetCatalog
from df_agent.forecasting.experiments import ForecastRunSettings, score_checkpoints, train_and_test
from df_agent.forecasting.io import expand_checkpoints

TINY = {"hidden_size": 8, "num_gru_layers": 1, "mlp_hidden_size": 8, "batches_per_epoch": 2, "max_epochs": 1,
        "val_samples": 2, "val_windows": 2, "val_sampling_steps": 2, "sampling_steps": 2, "num_samples": 2,
        "progress": False}


@pytest.fixture(scope="module")
def one_seed_run(exchange, tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast") / "run"
    runs, summary = train_and_test(exchange, ForecastRunSettings(out=out, seeds=(5,), **TINY),
                                   command=["df-agent", "forecast", "train", "--seed", "5"])
    return out, runs, summary


def test_one_seed_writes_its_checkpoint_and_results_at_out(one_seed_run):
    out, runs, summary = one_seed_run
    assert summary is None and len(runs) == 1
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    written = json.loads((out / "results.json").read_text())
    assert written["seed"] == 5 and written["checkpoint"] == str(out) and written["epochs_run"] == 1
    assert written["crps_sum"] == pytest.approx(runs[0]["crps_sum"])
    assert written["produced_by"]["command"] == "df-agent forecast train --seed 5"
    metadata = json.loads((out / "config.json").read_text())["metadata"]
    # Options left None take the recipe's values; the ones given win.
    assert metadata["recipe"] == "heldout" and metadata["training_config"]["learning_rate"] == 1e-3
    assert metadata["training_config"]["val_windows"] == 2 and metadata["training_config"]["val_holdout_steps"] == 300


def test_without_test_no_score_is_computed(exchange, tmp_path):
    settings = ForecastRunSettings(out=tmp_path / "run", seeds=(0, 1), test=False, **{**TINY, "max_epochs": 1})
    runs, summary = train_and_test(exchange, settings)
    assert [run["seed"] for run in runs] == [0, 1] and all("crps_sum" not in run for run in runs)
    assert summary["seeds"] == [0, 1] and "crps_sum_mean" not in summary
    assert (tmp_path / "run" / "seed_1" / "results.json").exists() and (tmp_path / "run" / "results.json").exists()


def test_scoring_the_checkpoint_reproduces_the_training_score(one_seed_run, caplog):
    out, runs, _ = one_seed_run
    summary = score_checkpoints([out], DatasetCatalog(), num_samples=2, seed=5)
    assert summary["dataset"] == "exchange_rate_nips" and summary["num_checkpoints"] == 1
    assert summary["crps_sum"] == pytest.approx(runs[0]["crps_sum"], rel=1e-6)
    assert summary["crps_sum_gluonts"] == summary["runs"][0]["crps_sum_gluonts"]
    assert summary["runs"][0]["train_seed"] == 5
    with caplog.at_level(logging.WARNING):
        score_checkpoints([out], DatasetCatalog(), dataset_name="exchange", num_samples=1)
    assert "trained on" not in caplog.text  # an alias of the recorded dataset is the same dataset


def test_scoring_refuses_bad_settings_before_sampling(one_seed_run, tmp_path):
    out, _, _ = one_seed_run
    with pytest.raises(ValueError, match="--num-samples must be >= 1"):
        score_checkpoints([out], DatasetCatalog(), num_samples=0)
    with pytest.raises(ValueError, match="--ddim-eta must be >= 0"):
        score_checkpoints([out], DatasetCatalog(), num_samples=1, ddim_eta=-0.5)
    with pytest.raises(ValueError, match="unknown time-series dataset"):
        score_checkpoints([out], DatasetCatalog(), dataset_name="no_such_data")


def test_a_folder_of_seed_checkpoints_stands_for_all_of_them(tmp_path):
    for seed in (2, 10):
        (tmp_path / "runs" / f"seed_{seed}").mkdir(parents=True)
        (tmp_path / "runs" / f"seed_{seed}" / "config.json").write_text("{}")
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "config.json").write_text("{}")
    assert expand_checkpoints([tmp_path / "runs", tmp_path / "single", tmp_path / "missing"]) == [
        tmp_path / "runs" / "seed_10", tmp_path / "runs" / "seed_2", tmp_path / "single", tmp_path / "missing"]
