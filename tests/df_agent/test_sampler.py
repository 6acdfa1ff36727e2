"""Algorithm 2: the fast sampler equals a literal implementation; guidance, MCG and context levels."""

from __future__ import annotations

import pytest
import torch

from df_agent.diffusion import ddim_step
from df_agent.model import DFModel, DFModelConfig
from df_agent.sampler import SamplerConfig, encode_context, repair_levels, sample
from df_agent.scheduling import autoregressive, full_sequence, pyramid, stabilized_autoregressive, steps_to_levels
from tests.df_agent.gaussian_model import GaussianOptimalModel


def literal_algorithm_2(model, levels, z0, x, guidance=None, scale=0.0):
    """Algorithm 2 exactly as written: every row re-runs the whole chain token by token."""
    for m in range(levels.shape[0] - 1):
        with torch.set_grad_enabled(guidance is not None):
            leaf = x.detach().requires_grad_(guidance is not None)
            z = z0
            x0s = []
            for t in range(levels.shape[1]):
                k = levels[m, t].expand(x.shape[0])
                latents, x0 = model.forward_sequence(z, leaf[:, t : t + 1], k[:, None])
                z = latents[:, 0]
                x0s.append(x0)
            x0 = torch.cat(x0s, dim=1)
            if guidance is not None:
                reward = guidance(torch.where((levels[m] == 0)[None, :, None], leaf, x0))
                (grad,) = torch.autograd.grad(reward.sum(), leaf)
        k_cur = levels[m].expand(x.shape[0], -1)
        k_next = levels[m + 1].expand(x.shape[0], -1)
        x = ddim_step(x.detach(), x0.detach(), k_cur, k_next, model.schedule)
        if guidance is not None:
            weight = (1 - model.schedule.alpha_bar(levels[m + 1])).sqrt() * (levels[m + 1] > 0)
            x = x + scale * weight[None, :, None] * grad
    return x


def tiny_model(backbone: str) -> DFModel:
    torch.manual_seed(3)
    return DFModel(DFModelConfig(token_dim=3, context_dim=2, latent_dim=8, hidden_dim=16, mlp_layers=2,
                                 backbone=backbone, num_levels=100)).double().eval()


MATRICES = {
    "pyramid": lambda: pyramid(6, 5, 1.0),
    "pyramid_u2": lambda: pyramid(5, 4, 2.0),
    "autoregressive": lambda: autoregressive(4, 3),
    "full": lambda: full_sequence(5, 4),
    "stabilized": lambda: stabilized_autoregressive(4, 4, 1),
}


@pytest.mark.parametrize("backbone", ["paper", "fast"])
@pytest.mark.parametrize("matrix_name", sorted(MATRICES))
def test_sampler_equals_literal_algorithm_2(backbone, matrix_name):
    model = tiny_model(backbone)
    steps_matrix = MATRICES[matrix_name]()
    levels = steps_to_levels(steps_matrix, int(steps_matrix.max()), model.num_levels)
    z0 = model.init_latent(torch.randn(3, 2, dtype=torch.float64))
    x_init = torch.randn(3, levels.shape[1], 3, dtype=torch.float64)
    with torch.no_grad():
        fast = sample(model, levels, z0, initial_tokens=x_init).tokens
        literal = literal_algorithm_2(model, levels, z0, x_init)
    torch.testing.assert_close(fast, literal, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backbone", ["paper", "fast"])
def test_guided_sampler_equals_literal_algorithm_2(backbone):
    model = tiny_model(backbone)
    levels = steps_to_levels(pyramid(5, 4, 1.0), 4, model.num_levels)
    z0 = model.init_latent(torch.randn(2, 2, dtype=torch.float64))
    x_init = torch.randn(2, 5, 3, dtype=torch.float64)
    goal = torch.tensor([1.0, -1.0], dtype=torch.float64)

    def reward(x0):
        return -(x0[..., :2] - goal).norm(dim=-1).sum(dim=1)

    config = SamplerConfig(guidance_scale=0.3)
    fast = sample(model, levels, z0, initial_tokens=x_init, guidance=reward, config=config).tokens
    literal = literal_algorithm_2(model, levels, z0, x_init, guidance=reward, scale=0.3)
    torch.testing.assert_close(fast, literal, rtol=1e-9, atol=1e-9)


def test_mcg_with_one_sample_equals_plain_guidance():
    model = tiny_model("fast")
    levels = steps_to_levels(pyramid(5, 4, 1.0), 4, model.num_levels)
    z0 = model.init_latent(torch.randn(2, 2, dtype=torch.float64))

    def reward(x0):
        return -(x0[..., :2] - 1.0).norm(dim=-1).sum(dim=1)

    outs = []
    for config in (SamplerConfig(guidance_scale=0.5), SamplerConfig(guidance_scale=0.5, mcg_samples=1)):
        outs.append(sample(model, levels, z0, guidance=reward, config=config,
                           generator=torch.Generator().manual_seed(5)).tokens)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    mcg = sample(model, levels, z0, guidance=reward, config=SamplerConfig(guidance_scale=0.5, mcg_samples=4),
                 generator=torch.Generator().manual_seed(5))
    assert mcg.tokens.shape == outs[0].shape
    assert not torch.allclose(mcg.tokens, outs[0])  # other futures change the averaged gradient


@pytest.mark.parametrize("matrix_name", ["pyramid", "pyramid_u2", "autoregressive"])
def test_independent_tokens_follow_their_own_ddim_path_under_any_schedule(matrix_name):
    # The optimal Gaussian denoiser makes tokens independent, so a token's final value depends only on
    # its own noise and its own levels: any schedule visiting the same S levels per token must give
    # exactly the full-sequence result (test_diffusion checks that one against the true law).
    model = GaussianOptimalModel(torch.tensor([0.5, -1.0], dtype=torch.float64),
                                 torch.tensor([[0.9, 0.1], [0.1, 0.8]], dtype=torch.float64),
                                 schedule="cosine", param="v", levels=1000)
    steps_matrix = MATRICES[matrix_name]()
    num_steps = int(steps_matrix.max())
    num_tokens = steps_matrix.shape[1]
    z0 = model.init_latent(torch.zeros(64, 1))
    x_init = torch.randn(64, num_tokens, 2, dtype=torch.float64)
    scheduled = sample(model, steps_to_levels(steps_matrix, num_steps, 1000), z0, initial_tokens=x_init).tokens
    reference = sample(model, steps_to_levels(full_sequence(num_tokens, num_steps), num_steps, 1000), z0,
                       initial_tokens=x_init).tokens
    torch.testing.assert_close(scheduled, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("target, scale, mcg_samples", [("input", 0.2, 1), ("estimate", 0.5, 1), ("estimate", 0.5, 4)])
def test_guidance_pulls_samples_towards_the_goal(target, scale, mcg_samples):
    mean = torch.zeros(2, dtype=torch.float64)
    model = GaussianOptimalModel(mean, torch.eye(2, dtype=torch.float64), schedule="linear", param="x0")
    levels = steps_to_levels(pyramid(4, 20), 20, 1000)
    goal = torch.tensor([1.5, 1.5], dtype=torch.float64)

    def reward(x0):
        return -(x0 - goal).pow(2).sum(dim=(1, 2))

    z0 = model.init_latent(torch.zeros(500, 1))
    plain = sample(model, levels, z0, generator=torch.Generator().manual_seed(0)).tokens
    config = SamplerConfig(guidance_scale=scale, guidance_target=target, mcg_samples=mcg_samples)
    guided = sample(model, levels, z0, guidance=reward, config=config,
                    generator=torch.Generator().manual_seed(0)).tokens
    distance = lambda x: float((x - goal).norm(dim=-1).mean())  # noqa: E731
    assert distance(guided) < 0.7 * distance(plain)


def test_context_levels_trusted_noisy_and_missing():
    model = tiny_model("paper")
    z0 = model.init_latent(torch.zeros(2, 2, dtype=torch.float64))
    tokens = torch.randn(2, 3, 3, dtype=torch.float64)
    other = tokens + 5.0
    missing = torch.full((2, 3), model.num_levels)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    # Missing tokens are replaced by noise: their values cannot reach the latent.
    torch.testing.assert_close(encode_context(model, z0, tokens, missing, gen()),
                               encode_context(model, z0, other, missing, gen()))
    trusted = torch.zeros(2, 3, dtype=torch.long)
    noisy = torch.full((2, 3), 40)
    z_trusted = encode_context(model, z0, tokens, trusted, gen())
    assert not torch.allclose(z_trusted, encode_context(model, z0, other, trusted, gen()))
    assert not torch.allclose(z_trusted, encode_context(model, z0, tokens, noisy, gen()))
    with pytest.raises(ValueError, match="context_levels must have shape"):
        encode_context(model, z0, tokens, trusted[:, :2])


def test_sampler_rejects_bad_inputs():
    model = tiny_model("fast")
    z0 = model.init_latent(torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="raises a noise level"):
        sample(model, torch.tensor([[100, 100], [0, 50], [0, 100], [0, 0]]), z0)
    with pytest.raises(ValueError, match="initial_tokens must have shape"):
        sample(model, steps_to_levels(full_sequence(2, 2), 2, 100), z0, initial_tokens=torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="mcg_samples"):
        SamplerConfig(mcg_samples=0)


def test_repair_levels_descend_evenly_to_clean():
    levels = repair_levels(400, 10, num_tokens=3)
    assert levels.shape == (11, 3)
    assert levels[0].tolist() == [400] * 3 and levels[-1].tolist() == [0] * 3
    assert bool((levels[1:] < levels[:-1]).all())
    assert repair_levels(3, 10, 2).shape == (4, 2)  # duplicate rows collapse: every row moves every token


def test_repair_pulls_guided_plans_back_to_the_prior():
    # Tokens are i.i.d. N(0, I) under the exact Gaussian denoiser. Guidance drags plans towards the goal;
    # repair from the top level forgets the plan and restores the prior's law, a partial repair lands in between.
    model = GaussianOptimalModel(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                                 schedule="linear", param="x0")
    levels = steps_to_levels(pyramid(4, 20), 20, 1000)
    goal = torch.tensor([1.5, 1.5], dtype=torch.float64)

    def reward(x0):
        return -(x0 - goal).pow(2).sum(dim=(1, 2))

    z0 = model.init_latent(torch.zeros(2000, 1))
    run = lambda **kw: sample(model, levels, z0, guidance=reward,  # noqa: E731
                              config=SamplerConfig(guidance_scale=0.2, **kw),
                              generator=torch.Generator().manual_seed(0)).tokens
    guided, partial, full = run(), run(repair_level=500, repair_steps=20), run(repair_level=1000, repair_steps=50)
    mean_norm = lambda x: float(x.mean(dim=(0, 1)).norm())  # noqa: E731
    assert mean_norm(full) < 0.1 < mean_norm(partial) < mean_norm(guided)
    torch.testing.assert_close(full.std(dim=(0, 1)), torch.ones(2, dtype=torch.float64), rtol=0, atol=0.05)
    off = sample(model, levels, z0, guidance=reward, config=SamplerConfig(guidance_scale=0.2, repair_level=0),
                 generator=torch.Generator().manual_seed(0)).tokens
    torch.testing.assert_close(off, guided, rtol=0, atol=0)


def test_repair_needs_a_schedule_that_ends_clean():
    model = tiny_model("fast")
    z0 = model.init_latent(torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="repair needs a schedule"):
        sample(model, torch.tensor([[100, 100], [50, 50]]), z0, config=SamplerConfig(repair_level=30))
    with pytest.raises(ValueError, match="repair_level"):
        SamplerConfig(repair_level=-1)


def test_selection_keeps_each_entrys_highest_reward_candidate():
    model = tiny_model("fast")
    levels = steps_to_levels(pyramid(4, 3, 1.0), 3, model.num_levels)
    z0 = model.init_latent(torch.randn(3, 2, dtype=torch.float64))

    def reward(x0):
        return -(x0[..., :2] - 1.0).norm(dim=-1).sum(dim=1)

    config = SamplerConfig(guidance_scale=0.3)
    chosen = sample(model, levels, z0, guidance=reward, config=SamplerConfig(guidance_scale=0.3, selection_samples=5),
                    generator=torch.Generator().manual_seed(7))
    # The candidates are the five plans the sampler draws for the tiled batch (candidate-major).
    candidates = sample(model, levels, z0.repeat(5, 1), guidance=reward, config=config,
                        generator=torch.Generator().manual_seed(7)).tokens.reshape(5, 3, *chosen.tokens.shape[1:])
    scores = reward(candidates.flatten(0, 1)).reshape(5, 3)
    best = candidates[scores.argmax(dim=0), torch.arange(3)]
    torch.testing.assert_close(chosen.tokens, best, rtol=0, atol=0)
    assert bool((reward(chosen.tokens) >= scores.max(dim=0).values - 1e-12).all())
    assert chosen.tokens.shape == (3, *candidates.shape[2:])
    single = sample(model, levels, z0, guidance=reward, config=SamplerConfig(guidance_scale=0.3, selection_samples=1),
                    generator=torch.Generator().manual_seed(7)).tokens
    torch.testing.assert_close(single, sample(model, levels, z0, guidance=reward, config=config,
                                              generator=torch.Generator().manual_seed(7)).tokens, rtol=0, atol=0)
    with pytest.raises(ValueError, match="selection_samples"):
        SamplerConfig(selection_samples=0)


def test_guidance_mask_scales_the_guidance_step_per_component():
    # The mask multiplies the guidance step componentwise: ones give plain guidance exactly, zeros give the
    # unguided sampler exactly, and a partial mask equals the literal Algorithm 2 with the masked step.
    model = tiny_model("fast")
    levels = steps_to_levels(pyramid(5, 4, 1.0), 4, model.num_levels)
    z0 = model.init_latent(torch.randn(2, 2, dtype=torch.float64))
    x_init = torch.randn(2, 5, 3, dtype=torch.float64)

    def reward(x0):
        return -(x0[..., :2] - 1.0).norm(dim=-1).sum(dim=1)

    config = SamplerConfig(guidance_scale=0.3)

    def run(mask, scale_config=config):
        return sample(model, levels, z0, initial_tokens=x_init, guidance=reward, config=scale_config,
                      guidance_mask=mask).tokens

    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(run(ones), run(None), rtol=0, atol=0)
    torch.testing.assert_close(run(torch.zeros(3, dtype=torch.float64)),
                               sample(model, levels, z0, initial_tokens=x_init).tokens, rtol=1e-12, atol=1e-12)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    partial = run(mask)
    assert not torch.allclose(partial, run(None))
    assert not torch.allclose(partial, run(torch.zeros(3, dtype=torch.float64)))
    with pytest.raises(ValueError, match="guidance_mask"):
        run(torch.ones(2, dtype=torch.float64))


def literal_estimate_guidance(model, levels, z0, x, guidance, scale):
    """Guidance on the clean estimate, written out: per row, the reward's gradient at x0_hat (no backward pass
    through the model) moves x0_hat, and the DDIM step carries sqrt(a_bar_next) of that move into the token."""
    for m in range(levels.shape[0] - 1):
        with torch.no_grad():
            k = levels[m].expand(x.shape[0], -1)
            _, x0 = model.forward_sequence(z0, x, k)
        leaf = torch.where((levels[m] == 0)[None, :, None], x, x0).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(guidance(leaf).sum(), leaf)
        k_next = levels[m + 1].expand(x.shape[0], -1)
        alpha_bar_next = model.schedule.alpha_bar(levels[m + 1])
        weight = (1 - alpha_bar_next).sqrt() * alpha_bar_next.sqrt() * (levels[m + 1] > 0)
        x = ddim_step(x, x0, k, k_next, model.schedule) + scale * weight[None, :, None] * grad
    return x


@pytest.mark.parametrize("backbone", ["paper", "fast"])
def test_estimate_guidance_equals_its_literal_form(backbone):
    model = tiny_model(backbone)
    levels = steps_to_levels(pyramid(5, 4, 1.0), 4, model.num_levels)
    z0 = model.init_latent(torch.randn(2, 2, dtype=torch.float64))
    x_init = torch.randn(2, 5, 3, dtype=torch.float64)

    def reward(x0):
        return -(x0[..., :2] - torch.tensor([1.0, -1.0], dtype=torch.float64)).norm(dim=-1).sum(dim=1)

    config = SamplerConfig(guidance_scale=0.3, guidance_target="estimate")
    fast = sample(model, levels, z0, initial_tokens=x_init, guidance=reward, config=config).tokens
    literal = literal_estimate_guidance(model, levels, z0, x_init, reward, 0.3)
    torch.testing.assert_close(fast, literal, rtol=1e-9, atol=1e-9)
    through_model = sample(model, levels, z0, initial_tokens=x_init, guidance=reward,
                           config=SamplerConfig(guidance_scale=0.3)).tokens
    assert not torch.allclose(fast, through_model)


def test_estimate_guidance_runs_no_backward_pass_through_the_model():
    model = tiny_model("fast")
    levels = steps_to_levels(pyramid(4, 4, 1.0), 4, model.num_levels)
    z0 = model.init_latent(torch.randn(2, 2, dtype=torch.float64))
    outputs_with_graph = []
    forward = model.forward_sequence

    def watched(*args):
        latents, x0 = forward(*args)
        outputs_with_graph.append(x0.requires_grad)
        return latents, x0

    model.forward_sequence = watched
    sample(model, levels, z0, guidance=lambda x0: -x0.pow(2).sum(dim=(1, 2)),
           config=SamplerConfig(guidance_scale=0.3, guidance_target="estimate", mcg_samples=3),
           generator=torch.Generator().manual_seed(1))
    assert outputs_with_graph and not any(outputs_with_graph)
    with pytest.raises(ValueError, match="guidance_target"):
        SamplerConfig(guidance_target="latent")

