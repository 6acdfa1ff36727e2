"""The time-series DF model: Algorithm-1 loss, autoregressive DDIM forecasts, token transforms, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from df_agent.forecasting.io import load_forecaster, save_forecaster
from df_agent.forecasting.model import ForecastDF, ForecastDFConfig


def small_config(**overrides) -> ForecastDFConfig:
    values = dict(target_dim=3, context_length=5, prediction_length=4, freq="B", lags=(1, 2), num_time_features=4,
                  hidden_size=16, num_gru_layers=4, mlp_hidden_size=16, sampling_steps=5)
    return ForecastDFConfig(**(values | overrides))


def random_walk(length: int, dim: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 5.0 + torch.cumsum(0.1 * torch.randn(length, dim, generator=generator), dim=0)


@pytest.mark.parametrize("transform", ["level", "difference", "increments"])
def test_loss_is_finite_and_reaches_every_parameter(transform):
    model = ForecastDF(small_config(token_transform=transform))
    series = random_walk(100, 3)
    model.fit_normalizers(series)
    starts = torch.tensor([3, 10, 40])
    offsets = torch.arange(9)
    tokens = series[starts[:, None] + offsets]
    lags = torch.cat([series[starts[:, None] + offsets - lag] for lag in model.config.level_lags], dim=-1)
    loss, metrics = model.loss({"tokens": tokens, "lags": lags, "time_features": torch.zeros(3, 9, 4)})
    assert torch.isfinite(loss) and metrics["loss"] == pytest.approx(loss.item())
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("transform", ["level", "difference", "increments"])
def test_token_transform_round_trip(transform):
    model = ForecastDF(small_config(token_transform=transform))
    series = random_walk(50, 3, seed=1)
    model.fit_normalizers(series)
    tokens = model._encode_tokens(series[1:], series[:-1])
    np.testing.assert_allclose(model._decode_token(tokens, series[:-1]), series[1:], rtol=1e-5, atol=1e-5)
    # Tokens are standardised on the training split, whatever they hold.
    assert abs(float(tokens.mean())) < 0.2 and 0.8 < float(tokens.std()) < 1.2


def test_increments_mode_reads_lagged_changes_not_levels():
    model = ForecastDF(small_config(token_transform="increments"))
    assert model.config.level_lags == (1, 2, 3) and model.config.max_lag == 3
    model.fit_normalizers(random_walk(60, 3))
    levels = random_walk(4, 3, seed=5)  # rows: x_{t-1}, x_{t-2}, x_{t-3} as level-lag blocks, one step
    raw = torch.cat([levels[0], levels[1], levels[2]]).reshape(1, 1, 9)
    features = model._normalize_lags(raw)
    expected = torch.cat([model.difference_normalizer.normalize(levels[0] - levels[1]),
                          model.difference_normalizer.normalize(levels[1] - levels[2])]).reshape(1, 1, 6)
    torch.testing.assert_close(features, expected)
    # Shifting every level by a constant changes nothing the model sees.
    torch.testing.assert_close(model._normalize_lags(raw + 3.0), features)


@pytest.mark.parametrize("transform", ["difference", "increments"])
def test_sampling_shapes_seeding_and_levels(transform):
    model = ForecastDF(small_config(token_transform=transform)).eval()
    model.fit_normalizers(random_walk(60, 3))
    history = random_walk(5 + model.config.max_lag, 3)[None].repeat(2, 1, 1)
    features = torch.zeros(2, 9, 4)
    first = model.sample(history, features, 6, torch.Generator().manual_seed(3))
    again = model.sample(history, features, 6, torch.Generator().manual_seed(3))
    other = model.sample(history, features, 6, torch.Generator().manual_seed(4))
    assert first.shape == (2, 6, 4, 3)
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)
    assert torch.isfinite(first).all()
    assert model.sampling_levels() == [1000, 800, 600, 400, 200, 0]
    with pytest.raises(ValueError, match="history must have shape"):
        model.sample(history[:, 1:], features, 2)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(history, features, 0)


def test_clean_token_probability_draws_clean_tokens():
    model = ForecastDF(small_config(token_transform="difference", clean_token_probability=0.5))
    model.fit_normalizers(random_walk(60, 3))
    seen = []
    original = model._unit

    def spy(x_noisy, k, *rest):
        seen.append(k.clone())
        return original(x_noisy, k, *rest)

    model._unit = spy
    series = random_walk(400, 3)
    starts = torch.arange(2, 362, 9)
    offsets = torch.arange(9)
    tokens = series[starts[:, None] + offsets]
    lags = torch.cat([series[starts[:, None] + offsets - lag] for lag in (1, 2)], dim=-1)
    model.loss({"tokens": tokens, "lags": lags, "time_features": torch.zeros(len(starts), 9, 4)})
    clean_fraction = float((seen[0] == 0).float().mean())
    assert 0.4 < clean_fraction < 0.6


def test_config_is_validated():
    with pytest.raises(ValueError, match="token_transform"):
        small_config(token_transform="log")
    with pytest.raises(ValueError, match="lag 1"):
        small_config(lags=(2, 3), token_transform="difference")
    with pytest.raises(ValueError, match="clean_token_probability"):
        small_config(clean_token_probability=1.0)
    with pytest.raises(ValueError, match="parameterization"):
        small_config(parameterization="score")
    with pytest.raises(ValueError, match="unknown ForecastDFConfig keys"):
        ForecastDFConfig.from_dict(small_config().to_dict() | {"bogus": 1})


def test_checkpoint_round_trip_reproduces_forecasts(tmp_path):
    torch.manual_seed(0)
    model = ForecastDF(small_config(token_transform="difference")).eval()
    model.fit_normalizers(random_walk(60, 3))
    save_forecaster(tmp_path / "ckpt", model, {"dataset": "toy", "seed": 0})
    loaded, metadata = load_forecaster(tmp_path / "ckpt")
    assert metadata == {"dataset": "toy", "seed": 0}
    assert loaded.config == model.config
    history, features = random_walk(7, 3)[None], torch.zeros(1, 9, 4)
    torch.testing.assert_close(
        loaded.sample(history, features, 4, torch.Generator().manual_seed(0)),
        model.sample(history, features, 4, torch.Generator().manual_seed(0)),
    )
    assert (tmp_path / "ckpt" / "config.json").is_file() and (tmp_path / "ckpt" / "model.safetensors").is_file()
