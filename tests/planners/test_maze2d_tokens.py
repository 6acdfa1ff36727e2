"""The maze2d token layout: frames <-> tokens, and the token_spec the shipped checkpoints record."""

from __future__ import annotations

import numpy as np
import pytest

from df_agent.checkpoint import read_checkpoint_config, shipped_checkpoint
from planners.maze2d_tokens import FRAME_DIM, frames_to_tokens, token_spec, tokens_to_frames


def test_frames_and_tokens_round_trip_frame_by_frame():
    frames = np.arange(2 * 6 * FRAME_DIM, dtype=float).reshape(2, 6, FRAME_DIM)
    tokens = frames_to_tokens(frames, 3)
    assert tokens.shape == (2, 2, 3 * FRAME_DIM)
    assert np.array_equal(tokens[0, 1, :FRAME_DIM], frames[0, 3])  # token 1 starts with frame 3
    assert np.array_equal(tokens_to_frames(tokens), frames)
    with pytest.raises(ValueError, match="frames must have shape"):
        frames_to_tokens(frames, 4)


def test_token_spec_is_what_the_shipped_checkpoints_record():
    config = read_checkpoint_config(shipped_checkpoint("maze2d-umaze"))
    spec = config["model_config"]["token_spec"]
    assert {key: spec[key] for key in token_spec(spec["frame_stack"])} == token_spec(spec["frame_stack"])
