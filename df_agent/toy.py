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
from pathlib import Path
from typing import Any

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

    def scores(self, tokens: Tensor, context: Tensor) -> dict[str, float]:
        """The three errors above, averaged over the sequences."""
        return {
            "residual": float(self.sinusoid_residual(tokens).mean()),
            "amplitude": float(self.amplitude_error(tokens).mean()),
            "context": float(self.context_error(tokens, context).mean()),
        }


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


@dataclass(frozen=True)
class ToyRunConfig:
    """One `train_and_score` run (the flags of `df-agent train toy`)."""

    out: Path = Path("runs/toy")  # run directory: checkpoints, metrics, final/
    steps: int = 400
    batch_size: int = 64
    backbone: str = "fast"
    width: int = 64  # latent and hidden width
    lr: float = 2e-3
    seed: int = 0  # of data, initialisation and sampling
    samples: int = 256  # sequences sampled for the score
    device: str = "auto"


def train_and_score(config: ToyRunConfig) -> dict[str, Any]:
    """Train a DF model on the sinusoid task, then score samples of the trained model, of an untrained twin and
    the data itself: {"checkpoint": final checkpoint, "steps", "scores": {trained | untrained | data: scores}}."""
    from df_agent.checkpoint import load_checkpoint
    from df_agent.training import TensorBatchSource, TrainConfig, train

    task = SinusoidTask()
    data = task.generate(20_000, torch.Generator().manual_seed(config.seed))
    torch.manual_seed(config.seed)
    model = DFModel(task.model_config(config.backbone, config.width))
    fit_normalizers(model, data)
    untrained = DFModel(task.model_config(config.backbone, config.width))
    fit_normalizers(untrained, data)

    train_config = TrainConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                               warmup_steps=min(50, config.steps), ema_decay=0.99, seed=config.seed,
                               device=config.device, log_every=max(1, config.steps // 10), checkpoint_every=0)
    result = train(model, TensorBatchSource(data), train_config, config.out,
                   metadata={"task": "sinusoid", "frame_stack": task.frame_stack})
    trained = load_checkpoint(result.final_checkpoint)

    evaluation = task.generate(config.samples, torch.Generator().manual_seed(config.seed + 1))
    context = evaluation["context"]
    scores = {}
    for name, candidate in (("trained", trained), ("untrained", untrained)):
        samples = sample_sequences(candidate, context, task.num_tokens,
                                   generator=torch.Generator().manual_seed(config.seed + 2))
        scores[name] = task.scores(samples, context)
    scores["data"] = task.scores(evaluation["tokens"], context)
    return {"checkpoint": str(result.final_checkpoint), "steps": config.steps, "scores": scores}


def score_table(scores: dict[str, dict[str, float]]) -> str:
    """`train_and_score`'s scores as a text table, one row per scored source."""
    lines = [f"{'':10s} {'residual':>9s} {'amplitude':>9s} {'context':>9s}   (errors, lower is better)"]
    for name, row in scores.items():
        lines.append(f"{name:10s} {row['residual']:9.4f} {row['amplitude']:9.4f} {row['context']:9.4f}")
    return "\n".join(lines)
