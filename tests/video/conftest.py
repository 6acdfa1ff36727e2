"""Video tests run torch on one thread: on a shared 2-core machine, two OpenMP threads per process that
compete with other busy processes spin-wait and made these small-tensor tests ~100x slower (0.7 s -> 87 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_torch_thread(_deterministic_torch):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
