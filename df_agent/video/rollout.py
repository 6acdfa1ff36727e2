"""Long video rollouts from a few ground-truth frames.

* `autoregressive_rollout`: Diffusion Forcing's stabilised autoregression (section 3.3, appendix C.4), run by the
  shared Algorithm-2 sampler with `scheduling.stabilized_autoregressive`: each new token is denoised down to a
  small level k_small and later tokens condition on it at that level. `stabilization_step = 0` is plain
  autoregression (every generated frame re-fed as clean): the teacher-forcing baseline's sampler.
  Rollouts far past the training length are generated in chunks of tokens; the latent that carries over between
  chunks is exactly the one the sampler would have used in one long matrix (checked in the tests).
* `sliding_window_rollout`: the causal full-sequence baseline. A window of the training length is denoised with
  one shared level per row; the context tokens take part with the "replacement" trick (re-noised to the row's
  level with fresh noise, the only in-distribution way for a full-sequence model to see them); then the window
  slides so that the last generated tokens become the next context.
"""

from __future__ import annotations

import torch
from torch import Tensor

from df_agent.diffusion import ddim_step
from df_agent.sampler import SamplerConfig, encode_context, sample
from df_agent.scheduling import full_sequence, stabilized_autoregressive, steps_to_levels


def stabilization_level(num_levels: int, sampling_steps: int, stabilization_step: int) -> int:
    """The noise level k_small that a sampling-step index stands for (0 = clean)."""
    return int(steps_to_levels(torch.tensor([[stabilization_step]]), sampling_steps, num_levels)[0, 0])


@torch.no_grad()
def autoregressive_rollout(
    model,
    context_tokens: Tensor,
    num_new_tokens: int,
    sampling_steps: int = 20,
    stabilization_step: int = 1,
    chunk_tokens: int = 8,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    initial_noise: Tensor | None = None,
) -> Tensor:
    """Context [B, C, *token] (clean, level 0) -> context + `num_new_tokens` generated tokens [B, C + N, *token].

    `initial_noise` [B, N, *token] fixes the starting noise of the new tokens (default: drawn per chunk)."""
    if num_new_tokens < 1 or chunk_tokens < 1:
        raise ValueError("num_new_tokens and chunk_tokens must be >= 1")
    if initial_noise is not None and initial_noise.shape[1] != num_new_tokens:
        raise ValueError(f"initial_noise has {initial_noise.shape[1]} tokens, expected {num_new_tokens}")
    z = encode_context(model, model.init_latent(context_tokens), context_tokens, None, generator)
    pieces = [context_tokens]
    remaining = num_new_tokens
    while remaining > 0:
        count = min(chunk_tokens, remaining)
        matrix = stabilized_autoregressive(count, sampling_steps, stabilization_step)
        levels = steps_to_levels(matrix, sampling_steps, model.num_levels)
        done = num_new_tokens - remaining
        start = None if initial_noise is None else initial_noise[:, done : done + count]
        result = sample(model, levels, z, config=SamplerConfig(eta=eta), generator=generator, initial_tokens=start)
        if stabilization_step > 0:
            # The last row re-evaluated every token at k_small: its final latent is the carried state.
            z = result.latents[:, -1]
        else:
            # Plain autoregression never evaluates the last token once it is clean; feed it now at level 0.
            z_before = z if count == 1 else result.latents[:, -2]
            z, _ = model.step(z_before, result.tokens[:, -1], torch.zeros(z.shape[0], dtype=torch.long))
        pieces.append(result.tokens)
        remaining -= count
    return torch.cat(pieces, dim=1)


@torch.no_grad()
def sliding_window_rollout(
    model,
    context_tokens: Tensor,
    num_new_tokens: int,
    window_tokens: int,
    sampling_steps: int = 20,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Full-sequence diffusion rolled out with a sliding window; returns [B, C + N, *token]."""
    batch, num_context = context_tokens.shape[:2]
    if window_tokens <= num_context:
        raise ValueError(f"window ({window_tokens} tokens) must be longer than the context ({num_context})")
    levels = steps_to_levels(full_sequence(1, sampling_steps), sampling_steps, model.num_levels)[:, 0]
    device = context_tokens.device
    history = context_tokens
    generated = 0
    while generated < num_new_tokens:
        context = history[:, -num_context:]
        count = min(window_tokens - num_context, num_new_tokens - generated)
        shape = (batch, count, *context_tokens.shape[2:])
        x = torch.randn(shape, generator=generator, device=device)
        z0 = model.init_latent(context)
        for k, k_next in zip(levels[:-1].tolist(), levels[1:].tolist()):
            noise = torch.randn(context.shape, generator=generator, device=device)
            level = torch.full((batch, num_context + count), k, dtype=torch.long, device=device)
            context_noisy = model.schedule.q_sample(context, level[:, :num_context], noise)
            _, x0_hat = model.forward_sequence(z0, torch.cat([context_noisy, x], dim=1), level)
            x = ddim_step(
                x, x0_hat[:, num_context:], level[:, num_context:], torch.full_like(level[:, num_context:], k_next),
                model.schedule, eta=eta,
            )
        history = torch.cat([history, x], dim=1)
        generated += count
    return history
