"""DFModel: Algorithm-1 loss, masks, unit equivalences, clear errors; frame stacking."""

from __future__ import annotations

import pytest
import torch

from df_agent.frame_stack import stack_frames, unstack_frames
from df_agent.model import DFModel, DFModelConfig


def make(backbone="paper", **overrides) -> DFModel:
    config = dict(token_dim=6, context_dim=4, latent_dim=16, hidden_dim=32, mlp_layers=2, backbone=backbone)
    config.update(overrides)
    return DFModel(DFModelConfig(**config))


def batch(b=4, t=5, d=6):
    return {"tokens": torch.randn(b, t, d), "context": torch.randn(b, 4)}


@pytest.mark.parametrize("backbone", ["paper", "fast"])
def test_step_by_step_equals_sequence(backbone):
    model = make(backbone).double()
    z0 = model.init_latent(torch.randn(3, 4, dtype=torch.float64))
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    k = torch.randint(0, 1001, (3, 7))
    latents, x0 = model.forward_sequence(z0, x, k)
    z = z0
    for t in range(7):
        z, x0_t = model.step(z, x[:, t], k[:, t])
        torch.testing.assert_close(z, latents[:, t])
        torch.testing.assert_close(x0_t, x0[:, t])


@pytest.mark.parametrize("backbone", ["paper", "fast"])
def test_model_is_causal(backbone):
    model = make(backbone).double()
    z0 = model.init_latent(torch.randn(2, 4, dtype=torch.float64))
    x = torch.randn(2, 6, 6, dtype=torch.float64)
    k = torch.randint(0, 1001, (2, 6))
    _, before = model.forward_sequence(z0, x, k)
    x_changed = x.clone()
    x_changed[:, 4:] += 3.0
    _, after = model.forward_sequence(z0, x_changed, k)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("weighting", ["none", "min_snr", "fused_snr"])
@pytest.mark.parametrize("param", ["x0", "eps", "v"])
def test_loss_is_finite_and_differentiable(weighting, param):
    model = make("fast", loss_weighting=weighting, parameterization=param, context_noise_prob=0.5)
    loss, metrics = model.loss(batch())
    loss.backward()
    assert torch.isfinite(loss) and metrics["loss"] == pytest.approx(float(loss))
    assert all(p.grad is not None for p in model.unit.parameters())


def test_padded_tokens_do_not_change_the_loss():
    model = make("paper")
    data = batch()
    data["mask"] = torch.ones(4, 5, dtype=torch.bool)
    data["mask"][:, 3:] = False
    torch.manual_seed(1)
    loss_a, _ = model.loss(data)
    data["tokens"][:, 3:] = 100.0  # garbage in padding only
    torch.manual_seed(1)
    loss_b, _ = model.loss(data)
    torch.testing.assert_close(loss_a, loss_b)


def test_loss_rejects_bad_batches_with_clear_errors():
    model = make()
    with pytest.raises(KeyError, match="'context'"):
        model.loss({"tokens": torch.randn(2, 3, 6)})
    with pytest.raises(ValueError, match=r"batch\['tokens'\] must have shape \(\*, \*, 6\)"):
        model.loss({"tokens": torch.randn(2, 3, 5), "context": torch.randn(2, 4)})
    with pytest.raises(ValueError, match="NaN"):
        model.loss({"tokens": torch.full((2, 3, 6), float("nan")), "context": torch.randn(2, 4)})
    with pytest.raises(ValueError, match="mask"):
        model.loss({**batch(2, 3), "mask": torch.ones(2, 4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="unknown backbone"):
        make(backbone="transformer")
    with pytest.raises(ValueError, match="unknown DFModelConfig keys"):
        DFModelConfig.from_dict({"token_dim": 2, "context_dim": 1, "widht": 3})


def test_context_level_changes_the_initial_latent():
    model = make()
    obs = torch.randn(2, 4)
    assert not torch.allclose(model.init_latent(obs, 0), model.init_latent(obs, 500))


def test_config_round_trip():
    model = make("fast", token_spec={"frame_stack": 10})
    clone = DFModel.from_config(model.config_dict())
    assert clone.config == model.config


def test_frame_stacking_round_trip_and_errors():
    frames = torch.arange(2 * 12 * 3, dtype=torch.float32).reshape(2, 12, 3)
    tokens = stack_frames(frames, 4)
    assert tokens.shape == (2, 3, 12)
    torch.testing.assert_close(tokens[0, 1, :3], frames[0, 4])  # the first frame of token 1
    torch.testing.assert_close(unstack_frames(tokens, 4, (3,)), frames)
    with pytest.raises(ValueError, match="multiple of frame_stack"):
        stack_frames(frames, 5)
    with pytest.raises(ValueError, match="token width"):
        unstack_frames(tokens, 3, (3,))
