"""A small real model and data source that follow the training/checkpoint contracts, shared by the checkpoint,
training and DDP tests (the DDP worker script imports it too).

TinyDenoiser is a genuine (if small) denoising model: per-token noise levels, a context encoder, normaliser
buffers and an x0-prediction MSE, so the loop's RNG handling, EMA and checkpointing see what DFModel needs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from df_agent.checkpoint import register_model_type
from df_agent.normalizer import Normalizer


class TinyDenoiser(nn.Module):
    model_type = "test_tiny_denoiser"

    def __init__(self, token_dim: int = 3, context_dim: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.token_dim, self.context_dim, self.hidden = token_dim, context_dim, hidden
        self.token_normalizer = Normalizer(token_dim)
        self.context_normalizer = Normalizer(context_dim)
        self.encoder = nn.Sequential(nn.Linear(context_dim, hidden), nn.SiLU())
        self.net = nn.Sequential(nn.Linear(token_dim + 1 + hidden, hidden), nn.SiLU(), nn.Linear(hidden, token_dim))

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TinyDenoiser:
        return cls(**cfg)

    def config_dict(self) -> dict[str, Any]:
        return {"token_dim": self.token_dim, "context_dim": self.context_dim, "hidden": self.hidden}

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x0 = self.token_normalizer.normalize(batch["tokens"])
        batch_size, time = x0.shape[:2]
        latent = self.encoder(self.context_normalizer.normalize(batch["context"]))
        # alpha_bar per token; taken from the batch when given so that tests can fix the randomness.
        alpha_bar = batch["alpha_bar"] if "alpha_bar" in batch else torch.rand(batch_size, time, device=x0.device)
        noise = batch["noise"] if "noise" in batch else torch.randn_like(x0)
        x_noisy = alpha_bar.sqrt()[..., None] * x0 + (1 - alpha_bar).sqrt()[..., None] * noise
        features = torch.cat([x_noisy, alpha_bar[..., None], latent[:, None].expand(-1, time, -1)], dim=-1)
        error = (self.net(features) - x0).pow(2).mean(-1)
        mask = batch.get("mask")
        loss = error.mean() if mask is None else (error * mask).sum() / mask.sum().clamp(min=1)
        return loss, {"mse": float(loss.detach())}


register_model_type(TinyDenoiser.model_type, TinyDenoiser, overwrite=True)


class NoisySines:
    """Sinusoids with a random phase and frequency per sequence plus observation noise; the context is the
    (cos, sin) of the phase, from which the model can infer the whole sequence up to frequency and noise."""

    def __init__(self, time: int = 8, token_dim: int = 3, noise: float = 0.05) -> None:
        self.time, self.token_dim, self.noise = time, token_dim, noise

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        phase = torch.rand(batch_size, 1, generator=generator) * 2 * math.pi
        frequency = 0.5 + torch.rand(batch_size, 1, generator=generator)
        steps = torch.arange(self.time, dtype=torch.float32)[None, :]
        offsets = torch.arange(self.token_dim, dtype=torch.float32) * 0.7
        clean = torch.sin(phase[..., None] + frequency[..., None] * steps[..., None] + offsets)
        tokens = clean + self.noise * torch.randn(clean.shape, generator=generator)
        context = torch.cat([phase.cos(), phase.sin()], dim=-1)
        return {"tokens": tokens, "context": context}

    def validation_batches(self):
        generator = torch.Generator().manual_seed(1234)
        for _ in range(2):
            yield self.sample_batch(16, generator)

    def describe(self) -> dict[str, Any]:
        return {"source": "NoisySines", "time": self.time, "token_dim": self.token_dim, "noise": self.noise}


def fitted_tiny_model(seed: int = 0, hidden: int = 32) -> TinyDenoiser:
    torch.manual_seed(seed)
    model = TinyDenoiser(hidden=hidden)
    batch = NoisySines().sample_batch(256, torch.Generator().manual_seed(99))
    model.token_normalizer.fit(batch["tokens"])
    model.context_normalizer.fit(batch["context"])
    return model
