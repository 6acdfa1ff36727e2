"""A model whose denoiser is the closed-form optimum for Gaussian data, for exact sampler tests.

Tokens are i.i.d. N(mu, Sigma); E[x0 | x_k] = mu + sqrt(a) Sigma (a Sigma + (1 - a) I)^{-1} (x_k - sqrt(a) mu)
with a = alpha_bar_k. It speaks the sampler's model interface (the latent counts tokens seen, so a
wrongly threaded latent would show up) and can emit its prediction in any parameterisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from df_agent.diffusion import NoiseSchedule, Parameterization, to_x0
from df_agent.diffusion.parameterization import from_x0


class GaussianOptimalModel(torch.nn.Module):
    def __init__(self, mean: Tensor, cov: Tensor, schedule: str = "linear", param: str = "x0", levels: int = 1000):
        super().__init__()
        self.mean = mean.double()
        self.cov = cov.double()
        self.schedule = NoiseSchedule(schedule, levels)
        self.param = Parameterization.parse(param)
        self.calls = 0

    @property
    def num_levels(self) -> int:
        return self.schedule.num_levels

    @property
    def token_shape(self) -> tuple[int, ...]:
        return (self.mean.shape[0],)

    def init_latent(self, context: Tensor, context_level=0) -> Tensor:
        return torch.zeros(context.shape[0], 1, dtype=torch.float64)

    def optimal_x0(self, x_k: Tensor, k: Tensor) -> Tensor:
        # One gain matrix per distinct level (rows of a scheduling matrix share few levels).
        unique, inverse = torch.unique(k, return_inverse=True)
        a = self.schedule.alpha_bar(unique).double()[:, None, None]
        eye = torch.eye(self.mean.shape[0], dtype=torch.float64)
        gains = a.sqrt() * self.cov @ torch.linalg.inv(a * self.cov + (1 - a) * eye)
        offsets = a[:, :, 0].sqrt() * self.mean
        if len(unique) == 1:  # the common case (full-sequence rows): one matrix product
            return self.mean + (x_k.double() - offsets[0]) @ gains[0].T
        centred = x_k.double() - offsets[inverse]
        return self.mean + torch.einsum("...ij,...j->...i", gains[inverse], centred)

    def forward_sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        self.calls += x_noisy.shape[1]
        x0 = self.optimal_x0(x_noisy, k)
        prediction = from_x0(self.param, x0, x_noisy.double(), k, self.schedule)
        x0_back = to_x0(self.param, prediction, x_noisy.double(), k, self.schedule)
        steps = torch.arange(1, x_noisy.shape[1] + 1, dtype=torch.float64)
        latents = z0[:, None, :] + steps[None, :, None]
        return latents, x0_back.to(x_noisy.dtype)
