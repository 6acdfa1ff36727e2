"""Fourier position features: exact values, shapes, causality, and old checkpoints staying loadable."""

from __future__ import annotations

import math

import pytest
import torch

from df_agent.backbones.encodings import PositionFourierFeatures, fourier_frequencies, position_indices
from df_agent.checkpoint import load_checkpoint, save_checkpoint
from df_agent.model import DFModel, DFModelConfig

FRAME = ["x", "y", "vx", "vy", "ax", "ay"]
SPEC = {"frame_stack": 2, "frame": FRAME, "context": ["x", "y", "vx", "vy"]}


def _config(backbone: str = "fast", **overrides) -> DFModelConfig:
    values = dict(token_dim=12, context_dim=4, latent_dim=16, hidden_dim=32, mlp_layers=2, backbone=backbone,
                  num_levels=100, level_embedding_dim=8, token_spec=SPEC, position_encoding="fourier",
                  fourier_frequencies=3)
    values.update(overrides)
    return DFModelConfig(**values)


def test_frequencies_are_a_geometric_ladder():
    frequencies = fourier_frequencies(3, 0.25, 4.0)
    assert torch.allclose(frequencies, torch.tensor([0.25, 1.0, 4.0]))
    with pytest.raises(ValueError, match="min_frequency"):
        fourier_frequencies(3, 0.0, 1.0)


def test_position_indices_follow_the_frame_layout():
    assert position_indices(FRAME, 3) == [0, 1, 6, 7, 12, 13]
    with pytest.raises(ValueError, match="missing"):
        position_indices(["vx", "vy"], 1)


def test_features_are_sin_cos_of_the_raw_position_estimate():
    encoder = PositionFourierFeatures([0, 1], torch.tensor([0.5, 2.0]))
    shift, scale = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    raw = torch.tensor([[0.3, -1.7, 9.0]])
    signal = torch.tensor([0.8])  # a level-k input is sqrt(a_k) * normalised value (noise-free here)
    noisy = signal[:, None] * (raw - shift) / scale
    features = encoder(noisy, signal, shift, scale)
    assert features.shape == (1, 2 * 2 * 2)
    expected = []
    for value in raw[0, :2].tolist():
        phases = [2 * math.pi * f * value for f in (0.5, 2.0)]
        expected += [math.sin(p) for p in phases] + [math.cos(p) for p in phases]
    assert torch.allclose(features[0], torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("backbone", ["fast", "paper"])
def test_model_with_fourier_features_has_the_usual_shapes_and_trains(backbone):
    torch.manual_seed(0)
    model = DFModel(_config(backbone))
    plain = DFModel(_config(backbone, position_encoding="none"))
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in plain.parameters())
    batch = {"tokens": torch.randn(3, 5, 12), "context": torch.randn(3, 4)}
    loss, _ = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.unit.embed.inp.weight.grad is not None if backbone == "fast" else True
    z0 = model.init_latent(torch.randn(3, 4), torch.tensor([0, 50, 100]))
    latents, x0 = model.forward_sequence(z0, torch.randn(3, 5, 12), torch.randint(0, 101, (3, 5)))
    assert latents.shape == (3, 5, 16) and x0.shape == (3, 5, 12)
    z, x0_step = model.step(z0, torch.randn(3, 12), torch.tensor([0, 1, 2]))
    assert z.shape == (3, 16) and x0_step.shape == (3, 12)


@pytest.mark.parametrize("backbone", ["fast", "paper"])
def test_a_token_never_sees_a_later_one(backbone):
    torch.manual_seed(1)
    model = DFModel(_config(backbone)).eval()
    z0 = model.init_latent(torch.randn(2, 4), 0)
    x = torch.randn(2, 6, 12)
    k = torch.randint(0, 101, (2, 6))
    _, before = model.forward_sequence(z0, x, k)
    changed = x.clone()
    changed[:, 4:] += 3.0  # change tokens 4 and 5 only
    k_changed = k.clone()
    k_changed[:, 4:] = 7
    _, after = model.forward_sequence(z0, changed, k_changed)
    assert torch.allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_step_matches_the_sequence_forward():
    torch.manual_seed(2)
    model = DFModel(_config("fast")).eval()
    z = model.init_latent(torch.randn(2, 4), 0)
    x = torch.randn(2, 3, 12)
    k = torch.randint(0, 101, (2, 3))
    _, sequence = model.forward_sequence(z, x, k)
    for t in range(3):
        z, x0 = model.step(z, x[:, t], k[:, t])
        assert torch.allclose(x0, sequence[:, t], atol=1e-5)


def test_layout_without_positions_is_refused_clearly():
    with pytest.raises(ValueError, match="token_spec 'frame'"):
        _config(token_spec={})
    with pytest.raises(ValueError, match="unknown position_encoding"):
        _config(position_encoding="hash")


def test_checkpoints_round_trip_and_old_configs_still_load(tmp_path):
    torch.manual_seed(3)
    model = DFModel(_config("fast"))
    save_checkpoint(tmp_path / "fourier", model)
    loaded = load_checkpoint(tmp_path / "fourier")
    assert loaded.config.position_encoding == "fourier"
    z0 = model.init_latent(torch.zeros(1, 4), 0)
    x, k = torch.randn(1, 2, 12), torch.tensor([[3, 9]])
    assert torch.allclose(model.forward_sequence(z0, x, k)[1], loaded.forward_sequence(z0, x, k)[1], atol=1e-6)
    # A config written before the encoding existed has none of its keys: it loads as an unencoded model.
    old = {k: v for k, v in _config("fast").__dict__.items() if not k.startswith(("position", "fourier"))}
    assert DFModelConfig.from_dict(old).position_encoding == "none"
