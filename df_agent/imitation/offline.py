"""Offline check of an imitation model: how well it predicts the demonstrator's next action chunk.

For every token t >= 1 of held-out episodes, the model sees the true tokens before it (at level 0) and samples
token t with Algorithm 2; the error of the sampled action chunk against the demonstration's is measured in
normalised units. With `memory=False` the latent sees only token t-1 (restarted from z_0), as the memoryless
policy does; the gap between the two shows how much the latent's memory helps predict what the operator does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from df_agent.imitation.model import ImitationDFModel
from df_agent.imitation.windows import EpisodeTokens, collate
from df_agent.sampler import sample
from df_agent.scheduling import autoregressive, steps_to_levels


@torch.no_grad()
def chunk_prediction_error(model: ImitationDFModel, episodes: Sequence[EpisodeTokens], *, memory: bool = True,
                           sampling_steps: int = 25, seed: int = 0) -> dict[str, float]:
    """Mean squared error (normalised action units) of sampled next action chunks, over all real tokens."""
    if not episodes:
        raise ValueError("chunk_prediction_error needs at least one episode")
    batch = collate(episodes)
    tokens = model.build_tokens(batch["actions"], batch["proprio"], batch["images"], batch["no_actions"])
    size, length, dim = tokens.shape
    if length < 2:
        raise ValueError("episodes need at least two tokens")
    clean = torch.zeros(size, length, dtype=torch.long)
    z0 = model.init_latent(batch_size=size)
    if memory:
        latents, _ = model.forward_sequence(z0, tokens, clean)
    else:
        single, _ = model.forward_sequence(model.init_latent(batch_size=size * length),
                                           tokens.reshape(size * length, 1, dim), clean.reshape(-1, 1))
        latents = single.reshape(size, length, -1)
    context = latents[:, :-1].reshape(size * (length - 1), -1)  # the latent before token t = 1 .. T-1
    levels = steps_to_levels(autoregressive(1, sampling_steps), sampling_steps, model.num_levels)
    result = sample(model, levels, context, generator=torch.Generator().manual_seed(seed))
    chunk = model.config.action_chunk_dim
    predicted = result.tokens[:, 0, :chunk].reshape(size, length - 1, chunk)
    target = tokens[:, 1:, :chunk]
    mask = batch["mask"][:, 1:].float()
    per_token = (predicted - target).pow(2).mean(-1)
    count = mask.sum().clamp(min=1.0)
    gripper = model.config.action_dim - 1
    raw_pred = model.split_tokens(result.tokens[:, 0])["actions"].reshape(size, length - 1, -1, model.config.action_dim)
    gripper_agree = ((raw_pred[..., gripper] > 0.5) == (batch["actions"][:, 1:, :, gripper] > 0.5)).float().mean(-1)
    return {
        "action_mse": float((per_token * mask).sum() / count),
        "gripper_agreement": float((gripper_agree * mask).sum() / count),
        "tokens": int(mask.sum()),
        "episodes": len(episodes),
        "memory": memory,
        "sampling_steps": sampling_steps,
    }
