"""A tiny maze2d-layout DF model trained for a few seconds on synthetic straight-line motion.

Each synthetic episode starts at rest at a random point; the first action picks a random heading and the point
then moves in a straight line at constant speed, taking the same action every step. Frames are maze2d frames
[x, y, vx, vy, ax, ay], so every direction is plausible from a start at rest and only the goal can prefer one.
"""

from __future__ import annotations

import functools
import math

import torch

from df_agent.model import DFModel, DFModelConfig

FRAME_STACK = 2
WINDOW_TOKENS = 4
STEP_LENGTH = 0.25  # distance moved per env step


def straight_line_batch(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    steps = WINDOW_TOKENS * FRAME_STACK
    start = torch.rand(batch, 2, generator=generator) * 2 - 1
    angle = torch.rand(batch, generator=generator) * 2 * math.pi
    heading = torch.stack([angle.cos(), angle.sin()], dim=-1)
    t = torch.arange(1, steps + 1, dtype=torch.float32)[None, :, None]
    positions = start[:, None] + t * STEP_LENGTH * heading[:, None]
    velocity = (STEP_LENGTH * heading)[:, None].expand(-1, steps, -1)
    actions = heading[:, None].expand(-1, steps, -1)
    frames = torch.cat([positions, velocity, actions], dim=-1)
    tokens = frames.reshape(batch, WINDOW_TOKENS, FRAME_STACK * 6)
    context = torch.cat([start, torch.zeros(batch, 2)], dim=-1)
    return {"tokens": tokens, "context": context}


def untrained_model(seed: int = 0, context_noise_prob: float = 0.2) -> DFModel:
    torch.manual_seed(seed)
    config = DFModelConfig(token_dim=FRAME_STACK * 6, context_dim=4, latent_dim=32, hidden_dim=64, mlp_layers=2,
                           backbone="fast", num_levels=100, context_noise_prob=context_noise_prob,
                           token_spec={"frame_stack": FRAME_STACK})
    model = DFModel(config)
    fit = straight_line_batch(4096, torch.Generator().manual_seed(123))
    model.token_normalizer.fit(fit["tokens"])
    model.context_normalizer.fit(fit["context"])
    return model


@functools.lru_cache(maxsize=1)
def trained_model(steps: int = 250) -> DFModel:
    """Trained once per test session (about 2-4 s on one core); callers must not modify it."""
    model = untrained_model()
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss, _ = model.loss(straight_line_batch(96, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model
