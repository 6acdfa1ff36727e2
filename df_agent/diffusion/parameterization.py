"""The three equivalent prediction targets (x0, eps, v) and exact conversions between them."""

from __future__ import annotations

from enum import Enum

from torch import Tensor

from df_agent.diffusion.schedule import NoiseSchedule


class Parameterization(str, Enum):
    X0 = "x0"
    EPS = "eps"
    V = "v"

    @classmethod
    def parse(cls, value: str | Parameterization) -> Parameterization:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown parameterization {value!r}; choose x0, eps or v") from None


def training_target(
    param: Parameterization | str, x0: Tensor, noise: Tensor, k: Tensor, schedule: NoiseSchedule
) -> Tensor:
    param = Parameterization.parse(param)
    if param is Parameterization.X0:
        return x0
    if param is Parameterization.EPS:
        return noise
    alpha_bar = schedule.alpha_bar(k, like=x0)
    return alpha_bar.sqrt() * noise - (1.0 - alpha_bar).sqrt() * x0


def to_x0(
    param: Parameterization | str, prediction: Tensor, x_k: Tensor, k: Tensor, schedule: NoiseSchedule
) -> Tensor:
    """The x0 estimate implied by a network prediction in any parameterisation."""
    param = Parameterization.parse(param)
    if param is Parameterization.X0:
        return prediction
    alpha_bar = schedule.alpha_bar(k, like=x_k)
    if param is Parameterization.EPS:
        return (x_k - (1.0 - alpha_bar).sqrt() * prediction) / alpha_bar.sqrt()
    return alpha_bar.sqrt() * x_k - (1.0 - alpha_bar).sqrt() * prediction


def to_eps(x0: Tensor, x_k: Tensor, k: Tensor, schedule: NoiseSchedule) -> Tensor:
    """The noise implied by x_k and an x0 estimate; defined as 0 for clean tokens (k = 0)."""
    alpha_bar = schedule.alpha_bar(k, like=x_k)
    sigma = (1.0 - alpha_bar).sqrt()
    eps = (x_k - alpha_bar.sqrt() * x0) / sigma.clamp(min=1e-12)
    return eps.where(sigma > 0, eps.new_zeros(()))


def from_x0(param: Parameterization | str, x0: Tensor, x_k: Tensor, k: Tensor, schedule: NoiseSchedule) -> Tensor:
    """Inverse of `to_x0`: the prediction in `param` that corresponds to the estimate x0."""
    param = Parameterization.parse(param)
    if param is Parameterization.X0:
        return x0
    eps = to_eps(x0, x_k, k, schedule)
    if param is Parameterization.EPS:
        return eps
    return training_target(Parameterization.V, x0, eps, k, schedule)
