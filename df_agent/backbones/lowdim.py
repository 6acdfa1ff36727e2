"""Causal recurrent units for low-dimensional tokens.

`PaperUnit` is the unit of the paper (B.2): ResMLP over [z_{t-1}, x_t^k, emb(k)] -> GRUCell -> ResMLP
-> z_t. It is inherently sequential: one Python-level call per token.

`FastUnit` stays causal but moves the per-token work out of the recurrence: a ResMLP embeds
[x_t^k, emb(k)] for all tokens at once, a fused multi-step `nn.GRU` carries the latent, and a ResMLP
head reads [h_t, token features] for all tokens at once. A whole row of Algorithm 2 is then one GRU
call instead of T unit calls.

Both return raw predictions in the model's parameterisation; the latent z has shape [B, latent_dim]. Their
inputs may be wider than the tokens (`input_dim`: the token followed by encoded features of it); the
predictions always have `token_dim` entries.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from df_agent.backbones.layers import LevelEmbedding, ResMLP


class PaperUnit(nn.Module):
    def __init__(
        self, token_dim: int, latent_dim: int, hidden_dim: int, mlp_layers: int, level_dim: int, num_levels: int,
        input_dim: int | None = None,
    ) -> None:
        super().__init__()
        input_dim = token_dim if input_dim is None else input_dim  # wider when encoded features are appended
        blocks_in = max(1, mlp_layers // 2)
        blocks_out = max(1, mlp_layers - blocks_in)
        self.level_embedding = LevelEmbedding(level_dim, num_levels)
        self.transition = ResMLP(latent_dim + input_dim + level_dim, hidden_dim, hidden_dim, blocks_in)
        self.gru = nn.GRUCell(hidden_dim, latent_dim)
        self.posterior = ResMLP(latent_dim, hidden_dim, latent_dim, blocks_out)
        self.head = nn.Linear(latent_dim, token_dim)

    def step(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        features = self.transition(torch_cat(z_prev, x_noisy, self.level_embedding(k)))
        hidden = self.gru(features, z_prev)
        z = hidden + self.posterior(hidden)
        return z, self.head(z)

    def sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        latents, predictions = [], []
        z = z0
        for t in range(x_noisy.shape[1]):
            z, prediction = self.step(z, x_noisy[:, t], k[:, t])
            latents.append(z)
            predictions.append(prediction)
        return stack(latents), stack(predictions)


class FastUnit(nn.Module):
    def __init__(
        self, token_dim: int, latent_dim: int, hidden_dim: int, mlp_layers: int, level_dim: int, num_levels: int,
        input_dim: int | None = None,
    ) -> None:
        super().__init__()
        input_dim = token_dim if input_dim is None else input_dim
        blocks_in = max(1, mlp_layers // 2)
        blocks_out = max(1, mlp_layers - blocks_in)
        self.level_embedding = LevelEmbedding(level_dim, num_levels)
        self.embed = ResMLP(input_dim + level_dim, hidden_dim, hidden_dim, blocks_in)
        self.gru = nn.GRU(hidden_dim, latent_dim, num_layers=1, batch_first=True)
        self.head = ResMLP(latent_dim + hidden_dim, hidden_dim, token_dim, blocks_out)

    def sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        features = self.embed(torch_cat(x_noisy, self.level_embedding(k)))
        latents, _ = self.gru(features, z0[None].contiguous())
        return latents, self.head(torch_cat(latents, features))

    def step(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        latents, predictions = self.sequence(z_prev, x_noisy[:, None], k[:, None])
        return latents[:, 0], predictions[:, 0]


def torch_cat(*tensors: Tensor) -> Tensor:
    return torch.cat(tensors, dim=-1)


def stack(tensors: list[Tensor]) -> Tensor:
    return torch.stack(tensors, dim=1)


UNITS: dict[str, type[nn.Module]] = {"paper": PaperUnit, "fast": FastUnit}
