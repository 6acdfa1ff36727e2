"""Long rollouts: shapes, equivalence with the shared Algorithm-2 sampler, and the stabilisation level."""

from __future__ import annotations

import pytest
import torch

from df_agent.sampler import encode_context, sample
from df_agent.scheduling import stabilized_autoregressive, steps_to_levels
from df_agent.video.config import tiny_config
from df_agent.video.evaluate import EvalSettings, rollout
from df_agent.video.model import VideoDFModel
from df_agent.video.rollout import autoregressive_rollout, sliding_window_rollout, stabilization_level

STEPS = 4


@pytest.fixture(scope="module")
def model() -> VideoDFModel:
    torch.manual_seed(0)
    return VideoDFModel(tiny_config()).eval()


def _context(model: VideoDFModel, tokens: int = 2) -> torch.Tensor:
    return torch.rand(2, tokens, *model.token_shape, generator=torch.Generator().manual_seed(3)) * 2 - 1


def test_rollout_shapes_and_context_is_kept(model: VideoDFModel) -> None:
    context = _context(model)
    out = autoregressive_rollout(model, context, 5, sampling_steps=STEPS, chunk_tokens=2)
    assert out.shape == (2, 7, *model.token_shape)
    assert torch.equal(out[:, :2], context)
    window = sliding_window_rollout(model, context, 5, window_tokens=4, sampling_steps=STEPS)
    assert window.shape == (2, 7, *model.token_shape) and torch.equal(window[:, :2], context)
    with pytest.raises(ValueError, match="window"):
        sliding_window_rollout(model, context, 5, window_tokens=2, sampling_steps=STEPS)


@pytest.mark.parametrize("stabilization_step", [0, 1, 2])
def test_chunked_rollout_equals_one_sampler_call(model: VideoDFModel, stabilization_step: int) -> None:
    context = _context(model)
    noise = torch.randn(2, 5, *model.token_shape, generator=torch.Generator().manual_seed(4))
    chunked = autoregressive_rollout(model, context, 5, STEPS, stabilization_step, chunk_tokens=2,
                                     initial_noise=noise)
    z = encode_context(model, model.init_latent(context), context, None)
    levels = steps_to_levels(stabilized_autoregressive(5, STEPS, stabilization_step), STEPS, model.num_levels)
    whole = sample(model, levels, z, initial_tokens=noise.clone()).tokens
    torch.testing.assert_close(chunked[:, 2:], whole, rtol=0, atol=1e-5)


class _Recorder:
    """Wraps a model and records (level, token) of every unit call."""

    def __init__(self, model: VideoDFModel) -> None:
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def step(self, z, x, k):
        k = torch.as_tensor(k).expand(x.shape[0])
        self.calls.append((int(k[0]), x[0].clone()))
        return self.model.step(z, x, k)

    def forward_sequence(self, z0, x, k):
        latents, estimates = [], []
        for i in range(x.shape[1]):
            z0, x0 = self.step(z0, x[:, i], k[:, i])
            latents.append(z0)
            estimates.append(x0)
        return torch.stack(latents, 1), torch.stack(estimates, 1)


@pytest.mark.parametrize("stabilization_step", [0, 1, 2])
def test_generated_frames_are_refed_at_the_stabilisation_level(model: VideoDFModel, stabilization_step: int) -> None:
    recorder = _Recorder(model)
    context = _context(model, tokens=1)
    out = autoregressive_rollout(recorder, context, 3, STEPS, stabilization_step, chunk_tokens=8)
    k_small = stabilization_level(model.num_levels, STEPS, stabilization_step)
    assert k_small == round(stabilization_step * model.num_levels / STEPS)
    # Token 1 is the first generated one; token 2 is generated conditioned on it. Every call that denoises
    # token 2 must see a latent fed with token 1 at level k_small: find the calls whose input is token 1's
    # final value (k_small = 0) or its stabilised state (k_small > 0), and check the level.
    levels_for_token1 = {level for level, x in recorder.calls if torch.allclose(x, out[0, 1], atol=1e-6)}
    if stabilization_step == 0:
        assert levels_for_token1 == {0}
    else:
        stabilised_inputs = [level for level, _ in recorder.calls if level == k_small]
        assert stabilised_inputs, "no unit call at the stabilisation level"
        assert 0 not in {level for level, _ in recorder.calls[1:]}, "a generated frame was re-fed as clean"


def test_methods_need_matching_checkpoints(model: VideoDFModel) -> None:
    video = torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8)
    settings = EvalSettings(context_frames=4, sampling_steps=2)
    with pytest.raises(ValueError, match="teacher_forcing"):
        rollout("teacher_forcing", model, video, 8, settings)
    frames = rollout("diffusion_forcing", model, video, 8, settings)
    assert frames.shape == (1, 8, 32, 32, 3) and frames.dtype.name == "uint8"
    assert (frames[:, :4] == 0).all()  # the ground-truth context is returned unchanged
