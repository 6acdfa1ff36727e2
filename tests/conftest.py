"""Shared pytest set-up: deterministic torch on one thread.

The suite's models are tiny, so intra-op threads only add synchronisation; on a loaded 2-core CI machine
two threads made small-model tests several times slower. DF_AGENT_TEST_THREADS overrides.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch

_THREADS = int(os.environ.get("DF_AGENT_TEST_THREADS", "1"))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(_THREADS)
    yield
