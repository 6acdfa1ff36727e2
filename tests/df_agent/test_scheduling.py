"""Scheduling-matrix invariants, checked with hypothesis over sizes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from df_agent.scheduling import (
    autoregressive,
    full_sequence,
    pyramid,
    stabilized_autoregressive,
    steps_to_levels,
    validate,
)

tokens = st.integers(min_value=1, max_value=40)
steps = st.integers(min_value=1, max_value=60)


def _common_invariants(matrix: torch.Tensor, num_steps: int) -> None:
    assert matrix.dtype == torch.long
    assert bool((matrix[0] == num_steps).all()), "first row must be all pure noise"
    assert bool((matrix[-1] == 0).all()), "last row must be all clean"
    assert bool((matrix[1:] <= matrix[:-1]).all()), "each column must be non-increasing"
    assert bool(((matrix[1:] != matrix[:-1]).any(dim=1)).all()), "no row may repeat the previous one"
    validate(matrix, num_steps)


@settings(max_examples=60, deadline=None)
@given(tokens, steps)
def test_full_sequence(num_tokens, num_steps):
    matrix = full_sequence(num_tokens, num_steps)
    _common_invariants(matrix, num_steps)
    assert matrix.shape == (num_steps + 1, num_tokens)
    assert bool((matrix == matrix[:, :1]).all())


@settings(max_examples=60, deadline=None)
@given(tokens, steps, st.floats(min_value=0.0, max_value=4.0))
def test_pyramid(num_tokens, num_steps, scale):
    matrix = pyramid(num_tokens, num_steps, scale)
    _common_invariants(matrix, num_steps)
    # Farther tokens are always at least as noisy as nearer ones.
    assert bool((matrix[:, 1:] >= matrix[:, :-1]).all())
    # Every token takes each of the S steps exactly once.
    assert bool(((matrix[1:] != matrix[:-1]).sum(dim=0) == num_steps).all())


def test_pyramid_matches_paper_example():
    expected = torch.tensor([[2, 2, 2], [1, 2, 2], [0, 1, 2], [0, 0, 1], [0, 0, 0]])
    assert torch.equal(pyramid(3, 2, 1.0), expected)
    assert torch.equal(pyramid(5, 7, 0.0), full_sequence(5, 7))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=15), st.integers(min_value=1, max_value=20))
def test_autoregressive_finishes_each_token_before_the_next_starts(num_tokens, num_steps):
    matrix = autoregressive(num_tokens, num_steps)
    _common_invariants(matrix, num_steps)
    assert matrix.shape == (num_tokens * num_steps + 1, num_tokens)
    for t in range(num_tokens - 1):
        started_next = (matrix[:, t + 1] < num_steps).nonzero()
        first_row_next = int(started_next[0])
        assert bool((matrix[first_row_next:, t] == 0).all())
        assert bool(matrix[first_row_next - 1, t] == 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=2, max_value=20), st.data())
def test_stabilized_autoregressive_holds_tokens_at_the_small_level(num_tokens, num_steps, data):
    small = data.draw(st.integers(min_value=1, max_value=num_steps - 1))
    matrix = stabilized_autoregressive(num_tokens, num_steps, small)
    _common_invariants(matrix, num_steps)
    body = matrix[:-1]
    assert int(body.min()) == small
    for t in range(num_tokens - 1):
        first_row_next = int((body[:, t + 1] < num_steps).nonzero()[0])
        assert bool((body[first_row_next:, t] == small).all())


def test_steps_to_levels_and_validation_errors():
    levels = steps_to_levels(pyramid(3, 50), 50, 1000)
    assert int(levels.max()) == 1000 and int(levels.min()) == 0
    assert sorted(set(levels[:, 0].tolist()))[:3] == [0, 20, 40]
    with pytest.raises(ValueError, match="raises a noise level"):
        validate(torch.tensor([[5, 5], [3, 5], [4, 0]]), 5)
    with pytest.raises(ValueError, match=r"0\.\.5"):
        validate(torch.tensor([[6, 5], [0, 0]]), 5)
    with pytest.raises(ValueError, match="stabilization_step"):
        stabilized_autoregressive(3, 5, 5)
    with pytest.raises(ValueError, match="uncertainty_scale"):
        pyramid(3, 5, -1.0)
