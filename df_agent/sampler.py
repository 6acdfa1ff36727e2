"""Algorithm 2: sampling with a scheduling matrix, guidance, Monte Carlo Guidance and noisy context.

The sampler drives any model that offers
    init_latent(context, context_level) -> z0                      (z0: [B, *latent_shape])
    forward_sequence(z0, x_noisy, k) -> (latents, x0_hat)          (x: [B, T, *token_shape], k: [B, T])
in the model's normalised token space.

Rows of the noise-level matrix are processed top to bottom; within a row tokens are processed left to
right, each latent feeding the next. Work that cannot change is skipped: a prefix of tokens whose
values and levels are the same as in the previous row keeps its cached latents, and without guidance
the tokens after the last one that moves in a row are not evaluated (they stay where they are). For a
`FastUnit` model a row is one fused call; for the paper's unit it is one call per evaluated token.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from df_agent.diffusion import ddim_step
from df_agent.diffusion.ddim import StayPolicy
from df_agent.scheduling import validate

log = logging.getLogger(__name__)

# reward(x0_hat [B', T, *token_shape] in normalised space) -> [B'] (higher is better); B' = B * mcg_samples
GuidanceFn = Callable[[Tensor], Tensor]

GUIDANCE_WEIGHTINGS = ("sigma", "variance", "constant")
# Where the guidance gradient is taken: "input" differentiates the reward of the model's clean estimate with
# respect to the noisy tokens it was computed from (through the model, as B.5 does); "estimate" differentiates
# it with respect to the clean estimate itself and moves that, so no backward pass runs through the model.
GUIDANCE_TARGETS = ("input", "estimate")


@dataclass
class SamplerConfig:
    eta: float = 0.0
    stay_policy: str = "copy"  # corner case of B.5 for the main plan: "copy" or "resample"
    guidance_scale: float = 0.0
    guidance_weighting: str = "sigma"  # per-token step factor: sqrt(1 - a_bar), (1 - a_bar) or 1
    mcg_samples: int = 1  # Monte Carlo Guidance: futures whose guidance gradients are averaged
    guidance_grad_clip: float | None = None  # clip the per-token gradient norm (None = off)
    # "estimate": the step moves the clean estimate x0_hat by scale * weight * grad_x0 R(x0_hat) and the noisy
    # token by sqrt(a_bar_next) times that (DDIM with the shifted estimate and the model's own noise). The
    # reward's own gradient decides the direction (a geodesic reward's points along the corridors), not the
    # model's Jacobian, whose through-the-latent terms drag early tokens far; and it costs no backward pass.
    guidance_target: str = "input"
    # Prior repair (SDEdit-style): after the schedule, re-noise every token to `repair_level` and denoise it
    # again in `repair_steps` unguided DDIM rows, `repair_rounds` times, so the model's prior can pull a plan
    # that guidance dragged off the data manifold (through a wall) back onto it. 0 = off.
    repair_level: int = 0
    repair_steps: int = 10
    repair_rounds: int = 1
    # Best-of-N: sample N plans per batch entry (each with the guidance above) and keep the one whose clean
    # tokens the guidance reward scores highest. A weakly guided model plan stays on the data manifold
    # where a strongly guided one is dragged off it; selection moves towards the reward without dragging.
    selection_samples: int = 1

    def __post_init__(self) -> None:
        StayPolicy(self.stay_policy)
        if self.guidance_target not in GUIDANCE_TARGETS:
            raise ValueError(f"guidance_target must be in {GUIDANCE_TARGETS}, got {self.guidance_target!r}")
        if self.guidance_weighting not in GUIDANCE_WEIGHTINGS:
            raise ValueError(f"guidance_weighting must be in {GUIDANCE_WEIGHTINGS}, got {self.guidance_weighting!r}")
        if self.mcg_samples < 1:
            raise ValueError(f"mcg_samples must be >= 1, got {self.mcg_samples}")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        if self.selection_samples < 1:
            raise ValueError(f"selection_samples must be >= 1, got {self.selection_samples}")
        if self.repair_level < 0 or self.repair_steps < 1 or self.repair_rounds < 1:
            raise ValueError(f"repair_level must be >= 0 and repair_steps, repair_rounds >= 1, got "
                             f"{self.repair_level}, {self.repair_steps}, {self.repair_rounds}")


@dataclass
class SampleResult:
    tokens: Tensor  # [B, T, *token_shape], normalised, at the last row's levels (0 = clean)
    x0_hat: Tensor  # the last x0 estimate of every token
    latents: Tensor | None  # latents after each token at the last evaluation (detached)
    unit_evaluations: int  # token evaluations performed (a cost measure independent of the backbone)
    rows: int


def _expand_levels(levels: Tensor, batch: int) -> Tensor:
    return levels[None, :].expand(batch, -1)


def encode_context(
    model,
    z0: Tensor,
    context_tokens: Tensor | None,
    context_levels: Tensor | None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Run executed/observed tokens through the latent: level 0 = trusted, 0 < k < K noisy, K missing.

    Missing tokens (level K) are replaced by pure noise so no stale value can leak into the latent.
    """
    if context_tokens is None:
        return z0
    if context_levels is None:
        context_levels = torch.zeros(context_tokens.shape[:2], dtype=torch.long, device=context_tokens.device)
    if tuple(context_levels.shape) != tuple(context_tokens.shape[:2]):
        raise ValueError(
            f"context_levels must have shape {tuple(context_tokens.shape[:2])}, got {tuple(context_levels.shape)}"
        )
    num_levels = model.num_levels
    if int(context_levels.min()) < 0 or int(context_levels.max()) > num_levels:
        raise ValueError(f"context levels must be in 0..{num_levels}")
    missing = (context_levels == num_levels).reshape(context_levels.shape + (1,) * (context_tokens.dim() - 2))
    noise = torch.randn(
        context_tokens.shape, generator=generator, device=context_tokens.device, dtype=context_tokens.dtype
    )
    tokens = torch.where(missing, noise, context_tokens)
    latents, _ = model.forward_sequence(z0, tokens, context_levels.long())
    return latents[:, -1]


def sample(
    model,
    levels: Tensor,
    z_start: Tensor,
    *,
    config: SamplerConfig | None = None,
    guidance: GuidanceFn | None = None,
    initial_tokens: Tensor | None = None,
    generator: torch.Generator | None = None,
    on_row: Callable[[int, Tensor, Tensor], None] | None = None,
    guidance_mask: Tensor | None = None,
) -> SampleResult:
    """Run Algorithm 2.

    levels: noise-level matrix [M, T] (entries 0..K, see `df_agent.scheduling`), shared by the batch.
    z_start: the latent before the first token, [B, *latent_shape] (from `init_latent` / `encode_context`).
    initial_tokens: values of the tokens at the first row's levels; pure noise where omitted.
    on_row(m, tokens, x0_hat): optional observer called after each row (diagnostics / figures).
    guidance_mask: optional weights [*token_shape] (0..1) on the guidance step per token component: 0 leaves a
    component to the model, so guidance reaches it only through what the model predicts from the guided ones.
    """
    config = config or SamplerConfig()
    if config.selection_samples > 1 and guidance is not None:
        return _best_of(model, levels, z_start, config, guidance, initial_tokens, generator, on_row, guidance_mask)
    num_levels = model.num_levels
    levels = torch.as_tensor(levels).long()
    validate(levels, num_levels)
    device = z_start.device
    levels = levels.to(device)
    batch = z_start.shape[0]
    num_tokens = levels.shape[1]
    token_shape = tuple(model.token_shape)
    shape = (batch, num_tokens, *token_shape)
    if initial_tokens is None:
        x = torch.randn(shape, generator=generator, device=device, dtype=z_start.dtype)
    else:
        if tuple(initial_tokens.shape) != shape:
            raise ValueError(f"initial_tokens must have shape {shape}, got {tuple(initial_tokens.shape)}")
        x = initial_tokens.clone()
    z_start = z_start.detach()
    guided = guidance is not None and config.guidance_scale != 0.0
    samples = config.mcg_samples if guided else 1
    schedule = model.schedule
    trailing = (1,) * len(token_shape)
    if guidance_mask is not None:
        guidance_mask = torch.as_tensor(guidance_mask, device=device, dtype=z_start.dtype)
        if tuple(guidance_mask.shape) != token_shape:
            raise ValueError(f"guidance_mask must have the token shape {token_shape}, got {tuple(guidance_mask.shape)}")

    latents_cache: Tensor | None = None  # latents after each token, valid for tokens [0, cache_end)
    cache_end = 0
    x0_cache = torch.zeros_like(x)
    evaluations = 0

    for m in range(levels.shape[0] - 1):
        k_cur, k_next = levels[m], levels[m + 1]
        moving = (k_next != k_cur).nonzero()
        if not guided and len(moving) == 0 and config.stay_policy == "copy":
            continue
        start = min(cache_end, int(moving[0]) if len(moving) else num_tokens)
        if guided or config.stay_policy != "copy":
            end = num_tokens
        else:
            end = int(moving[-1]) + 1
        start = min(start, end - 1) if end > 0 else 0
        z_in = z_start if start == 0 else latents_cache[:, start - 1]
        span_levels = _expand_levels(k_cur[start:end], batch)

        through_model = guided and config.guidance_target == "input"
        with torch.set_grad_enabled(through_model):
            span = x[:, start:end].detach()
            if through_model:
                span.requires_grad_(True)
            if samples > 1:
                span_in, z_in_rep, span_levels_rep = _mcg_copies(
                    span, x0_cache[:, start:end], z_in, span_levels, k_cur[start:end], k_next[start:end],
                    samples, schedule, generator,
                )
            else:
                span_in, z_in_rep, span_levels_rep = span, z_in, span_levels
            latents, x0_span = model.forward_sequence(z_in_rep, span_in, span_levels_rep)
            evaluations += span_in.shape[0] * (end - start)
        gradient = None
        if guided:
            # The guidance reward sees every token's clean estimate; finished tokens are their value.
            with torch.enable_grad():
                if through_model:
                    wrt = span
                else:
                    x0_span = x0_span.detach().requires_grad_(True)
                    wrt = x0_span
                prefix = x[:, :start].detach().repeat(samples, *([1] * (x.dim() - 1)))
                full_x0 = torch.cat([prefix, x0_span], dim=1)
                reward = guidance(full_x0)
                if tuple(reward.shape) != (batch * samples,):
                    raise ValueError(f"guidance must return one reward per plan, shape {(batch * samples,)}, "
                                     f"got {tuple(reward.shape)}")
                (gradient,) = torch.autograd.grad(reward.sum(), wrt)
            if not through_model:
                # MCG: the average of the futures' gradients, each taken at its own clean estimate.
                gradient = gradient.reshape(samples, batch, *gradient.shape[1:]).sum(dim=0)
            gradient = gradient / samples
            if guidance_mask is not None:
                gradient = gradient * guidance_mask

        latents = latents[:batch].detach()
        x0_main = x0_span[:batch].detach()
        span = span.detach()
        noise = None
        if config.eta > 0:
            noise = torch.randn(span.shape, generator=generator, device=device, dtype=span.dtype)
        new_span = ddim_step(
            span, x0_main, span_levels, _expand_levels(k_next[start:end], batch), schedule,
            eta=config.eta, noise=noise, stay_policy=config.stay_policy,
        )
        if gradient is not None:
            step = config.guidance_scale * _guidance_step(gradient, k_next[start:end], schedule, config, trailing)
            if not through_model:
                # The estimate moves by `step`; the noisy token, which carries sqrt(a_bar_next) of it, with it.
                keep = schedule.alpha_bar(k_next[start:end]).to(step.dtype).sqrt().reshape(1, -1, *trailing)
                step = keep * step
            new_span = new_span + step

        x = torch.cat([x[:, :start], new_span, x[:, end:]], dim=1)
        x0_cache = torch.cat([x0_cache[:, :start], x0_main, x0_cache[:, end:]], dim=1)
        if latents_cache is None:
            latents_cache = torch.zeros((batch, num_tokens, *latents.shape[2:]), device=device, dtype=latents.dtype)
        latents_cache = torch.cat([latents_cache[:, :start], latents, latents_cache[:, end:]], dim=1)
        # Latents stay valid up to the first token whose value or level changes before the next row.
        changed = (k_next != k_cur)
        if guided:
            changed = changed | (k_next > 0)
        if config.stay_policy != "copy":
            changed = changed | ((k_cur > 0) & (k_cur < num_levels))
        changed_at = changed.nonzero()
        cache_end = min(end, int(changed_at[0]) if len(changed_at) else num_tokens)
        if on_row is not None:
            on_row(m, x, x0_cache)

    rows = levels.shape[0]
    if config.repair_level > 0:
        if int(levels[-1].max()) != 0:
            raise ValueError("repair needs a schedule that ends with every token clean (last row all 0)")
        repair_level = min(config.repair_level, num_levels)
        repair_matrix = repair_levels(repair_level, config.repair_steps, num_tokens).to(device)
        plain = dataclasses.replace(config, guidance_scale=0.0, repair_level=0)
        for _ in range(config.repair_rounds):
            noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
            start_levels = repair_matrix[0][None, :].expand(batch, -1)
            noisy = schedule.q_sample(x.detach(), start_levels, noise)
            repaired = sample(model, repair_matrix, z_start, config=plain, initial_tokens=noisy, generator=generator)
            x, x0_cache, latents_cache = repaired.tokens, repaired.x0_hat, repaired.latents
            evaluations += repaired.unit_evaluations
            rows += repaired.rows
    return SampleResult(x, x0_cache, latents_cache, evaluations, rows)


def _best_of(model, levels, z_start, config, guidance, initial_tokens, generator, on_row,
             guidance_mask) -> SampleResult:
    """Sample `selection_samples` plans per entry (tiled along the batch) and keep each entry's best."""
    count, batch = config.selection_samples, z_start.shape[0]
    tiled_z = z_start.repeat(count, *([1] * (z_start.dim() - 1)))
    tiled_init = None if initial_tokens is None else initial_tokens.repeat(count, *([1] * (initial_tokens.dim() - 1)))
    single = dataclasses.replace(config, selection_samples=1)
    result = sample(model, levels, tiled_z, config=single, guidance=guidance, initial_tokens=tiled_init,
                    generator=generator, on_row=on_row, guidance_mask=guidance_mask)
    with torch.no_grad():
        scores = guidance(result.tokens.detach()).reshape(count, batch)
    best = scores.argmax(dim=0)  # [batch]
    index = best * batch + torch.arange(batch, device=best.device)
    latents = None if result.latents is None else result.latents[index]
    return SampleResult(result.tokens[index], result.x0_hat[index], latents, result.unit_evaluations, result.rows)


def repair_levels(level: int, steps: int, num_tokens: int) -> Tensor:
    """A full-sequence matrix [steps + 1, num_tokens] from `level` down to 0 in `steps` even DDIM rows."""
    column = torch.round(torch.linspace(float(level), 0.0, steps + 1)).long()
    column = torch.unique_consecutive(column)
    return column[:, None].expand(-1, num_tokens).contiguous()


def _mcg_copies(
    span: Tensor,
    x0_estimate: Tensor,
    z_in: Tensor,
    span_levels: Tensor,
    k_cur: Tensor,
    k_next: Tensor,
    samples: int,
    schedule,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Copy 0 is the plan itself; copies 1..N-1 re-sample every token that stays at its level this row
    (predict x0, re-noise to the same level with fresh noise: the B.5 'resample' corner case), giving N
    plausible futures of the still-uncertain tail."""
    batch = span.shape[0]
    stays = ((k_cur == k_next) & (k_cur > 0)).reshape(1, -1, *([1] * (span.dim() - 2)))
    copies = [span]
    for _ in range(samples - 1):
        noise = torch.randn(span.shape, generator=generator, device=span.device, dtype=span.dtype)
        fresh = schedule.q_sample(x0_estimate, span_levels, noise)
        copies.append(torch.where(stays, fresh, span))
    repeat = [samples] + [1] * (z_in.dim() - 1)
    return torch.cat(copies, dim=0), z_in.repeat(*repeat), span_levels.repeat(samples, 1)[: batch * samples]


def _guidance_step(gradient: Tensor, k_next: Tensor, schedule, config: SamplerConfig, trailing: tuple) -> Tensor:
    # Finished tokens (k_next = 0) are not moved; noisier tokens move more, like a posterior-variance step.
    alpha_bar = schedule.alpha_bar(k_next).to(gradient.dtype)
    if config.guidance_weighting == "sigma":
        weight = (1.0 - alpha_bar).sqrt()
    elif config.guidance_weighting == "variance":
        weight = 1.0 - alpha_bar
    else:
        weight = torch.ones_like(alpha_bar)
    weight = torch.where(k_next > 0, weight, torch.zeros_like(weight)).reshape(1, -1, *trailing)
    if config.guidance_grad_clip is not None:
        flat = gradient.flatten(2)
        norm = flat.norm(dim=-1).clamp(min=1e-12)
        factor = (config.guidance_grad_clip / norm).clamp(max=1.0).reshape(norm.shape + trailing)
        gradient = gradient * factor
    return weight * gradient
