"""Exponential moving average of a model's weights, kept as a full model copy (usable for evaluation/saving)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`ema = decay * ema + (1 - decay) * weights` after each optimizer update.

    With `warmup`, the decay used after n updates is min(decay, (1 + n) / (10 + n)): early averages would
    otherwise be dominated by the random initialisation for ~1 / (1 - decay) steps. Buffers (normalisers)
    are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = True, start_step: int = 0) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.start_step = start_step
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in `model`'s weights after optimizer update number `step` (1-based count of updates done)."""
        ema_params = [p for p in self.model.parameters()]
        live_params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(live_params):
            raise ValueError("EMA model and live model have different parameter lists")
        if step <= self.start_step:
            torch._foreach_copy_(ema_params, live_params)
        else:
            torch._foreach_lerp_(ema_params, live_params, 1.0 - self.current_decay())
            self.num_updates += 1
        for ema_buffer, live_buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(live_buffer)

    def state(self) -> dict[str, float | int | bool]:
        return {"decay": self.decay, "warmup": self.warmup, "start_step": self.start_step,
                "num_updates": self.num_updates}

    def load_state(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
