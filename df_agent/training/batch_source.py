"""The data contract of the training loop: random batches drawn with an explicit generator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class BatchSource(Protocol):
    """Anything that can draw a training batch. It must use only `generator` for randomness: the loop re-seeds
    that generator from (seed, step, rank), which is what makes resume and data-parallel sharding exact.
    Optional extras the loop uses when present: `validation_batches() -> Iterable[dict]` and
    `describe() -> dict` (recorded in checkpoint metadata)."""

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]: ...


class TensorBatchSource:
    """Uniformly sampled rows of in-memory tensors that share their first dimension (e.g. sequence windows)."""

    def __init__(self, tensors: Mapping[str, Tensor], *, validation: Mapping[str, Tensor] | None = None,
                 validation_batch_size: int = 256, description: Mapping[str, Any] | None = None) -> None:
        self.tensors = _check_rows(tensors, "tensors")
        self.validation = _check_rows(validation, "validation") if validation is not None else None
        self.validation_batch_size = validation_batch_size
        self.description = dict(description or {})
        self.num_rows = next(iter(self.tensors.values())).shape[0]

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        index = torch.randint(0, self.num_rows, (batch_size,), generator=generator)
        return {name: tensor[index] for name, tensor in self.tensors.items()}

    def validation_batches(self) -> Iterator[dict[str, Tensor]]:
        if self.validation is None:
            return
        rows = next(iter(self.validation.values())).shape[0]
        for start in range(0, rows, self.validation_batch_size):
            yield {name: tensor[start:start + self.validation_batch_size] for name, tensor in self.validation.items()}

    def describe(self) -> dict[str, Any]:
        shapes = {name: list(tensor.shape) for name, tensor in self.tensors.items()}
        return {"source": type(self).__name__, "train_shapes": shapes, **self.description}


def _check_rows(tensors: Mapping[str, Tensor], what: str) -> dict[str, Tensor]:
    if not tensors:
        raise ValueError(f"{what}: no tensors given")
    rows = {name: tensor.shape[0] if tensor.dim() else None for name, tensor in tensors.items()}
    if len(set(rows.values())) != 1 or None in rows.values() or 0 in rows.values():
        raise ValueError(f"{what}: all tensors need the same non-zero first dimension, got {rows}")
    return dict(tensors)
