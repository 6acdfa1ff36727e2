"""Shared pytest set-up: deterministic torch on few threads so the suite behaves on 2-core CI."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest


@pytest.fixture(autouse=True)
def _deterministic_torch():
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield
