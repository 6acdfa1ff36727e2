"""A small stochastic sequence task for smoke runs and tests: sinusoids of random phase.

Each sequence is x_t = sin(omega * t + phi) + small noise with phi ~ U[0, 2 pi). The context is the value
at t = 0 only, which leaves two possible phases (rising or falling), so the model must learn a
distribution, not a function. Tokens stack `frame_stack` consecutive values. Quality is measured without
likelihoods: the RMS residual of each sampled sequence against its best-fitting sinusoid of the known
frequency (data scores about the noise level), the error of the fitted amplitude, and how well the fitted
curve continues the observed context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from df_agent.model import DFModel, DFModelConfig
from df_agent.sampler import SamplerConfig, sample
from df_agent.scheduling import pyramid, steps_to_levels


@dataclass(frozen=True)
class SinusoidTask:
    num_tokens: int = 8
    frame_stack: int = 4
    omega: float = 0.35
    noise_std: float = 0.02

    @property
    def length(self) -> int:
        return self.num_tokens * self.frame_stack

    def generate(self, count: int, generator: torch.Generator) -> dict[str, Tensor]:
        phase = torch.rand(count, 1, generator=generator) * 2 * math.pi
        t = torch.arange(self.length + 1, dtype=torch.float32)[None, :]
        values = torch.sin(self.omega * t + phase)
        values = values + self.noise_std * torch.randn(values.shape, generator=generator)
        tokens = values[:, 1:].reshape(count, self.num_tokens, self.frame_stack)
        return {"tokens": tokens, "context": values[:, :1]}

    def model_config(self, backbone: str = "fast", width: int = 64) -> DFModelConfig:
        return DFModelConfig(
            token_dim=self.frame_stack, context_dim=1, latent_dim=width, hidden_dim=width, mlp_layers=2,
            backbone=backbone, num_levels=1000, schedule="cosine", parameterization="x0",
            token_spec={"task": "sinusoid", "frame_stack": self.frame_stack, "omega": self.omega},
        )

    def _fit(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        values = tokens.reshape(tokens.shape[0], -1).double()
        t = torch.arange(1, self.length + 1, dtype=torch.float64)
        basis = torch.stack([torch.sin(self.omega * t), torch.cos(self.omega * t), torch.ones_like(t)], dim=1)
        coefficients = torch.linalg.lstsq(basis, values.T).solution
        return values, (basis @ coefficients).T, coefficients.T

    def sinusoid_residual(self, tokens: Tensor) -> Tensor:
        """Per-sequence RMS distance to the best sinusoid a sin(wt) + b cos(wt) + c of the task's frequency."""
        values, fit, _ = self._fit(tokens)
        return (values - fit).pow(2).mean(dim=1).sqrt()

    def amplitude_error(self, tokens: Tensor) -> Tensor:
        """Per-sequence |fitted amplitude - 1|: a blurry sample can be smooth yet far too flat."""
        _, _, coefficients = self._fit(tokens)
        return (coefficients[:, :2].norm(dim=1) - 1.0).abs()

    def context_error(self, tokens: Tensor, context: Tensor) -> Tensor:
        """|fitted value at t = 0 - observed context|: do samples continue the observed start?"""
        _, _, coefficients = self._fit(tokens)
        return (coefficients[:, 1] + coefficients[:, 2] - context[:, 0].double()).abs()


@torch.no_grad()
def sample_sequences(model: DFModel, context: Tensor, num_tokens: int, steps: int = 20,
                     generator: torch.Generator | None = None) -> Tensor:
    """Unnormalised samples [B, T, D] from a DF model given raw contexts [B, C] (pyramid schedule)."""
    model.eval()
    z0 = model.init_latent(model.context_normalizer.normalize(context))
    levels = steps_to_levels(pyramid(num_tokens, steps, 1.0), steps, model.num_levels)
    result = sample(model, levels, z0, config=SamplerConfig(), generator=generator)
    return model.token_normalizer.unnormalize(result.tokens)


def fit_normalizers(model: DFModel, data: dict[str, Tensor]) -> None:
    model.token_normalizer.fit(data["tokens"])
    model.context_normalizer.fit(data["context"])
