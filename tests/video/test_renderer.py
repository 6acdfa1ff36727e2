"""The MuJoCo first-person renderer on a hand-built corridor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.video_maze.agent import Pose
from data.video_maze.renderer import FLOOR, QUADRANT_COLOURS, SKY, WALL, MazeRenderer

# A straight east-west corridor along row 1 of a 3 x 9 block grid (quadrants 0 and 1 both in the top half).
CORRIDOR = np.ones((3, 9), dtype=bool)
CORRIDOR[1, 1:8] = False


@pytest.fixture(scope="module")
def renderer():
    with MazeRenderer(CORRIDOR, resolution=32) as r:
        yield r


def test_view_down_the_corridor(renderer: MazeRenderer) -> None:
    seg = renderer.segment(Pose(x=1.0, y=1.0, angle=0.0))  # west end, looking east along the corridor
    mid = seg.shape[1] // 2
    column = seg[:, mid]
    # Looking down a long corridor: sky above, floor below, only a small slab of far end wall in the middle.
    assert column[0] == SKY and column[-1] == FLOOR
    assert (column == WALL).sum() <= 6
    # Side walls fill both image edges at mid height; the corridor view is left-right symmetric.
    assert seg[16, 0] == WALL and seg[16, -1] == WALL
    assert (seg == seg[:, ::-1]).mean() > 0.95


def test_view_into_the_end_wall(renderer: MazeRenderer) -> None:
    seg = renderer.segment(Pose(x=1.0, y=1.0, angle=math.pi))  # looking west into the adjacent wall block
    assert (seg[16] == WALL).all(), "a wall half a block away fills the middle row"
    assert (seg[:, 16] == WALL).mean() > 0.8
    # The same pose rendered in colour shows that wall's quadrant colour (quadrant 0, brick red).
    rgb = renderer.render(Pose(x=1.0, y=1.0, angle=math.pi)).astype(float)
    centre = rgb[12:20, 12:20].reshape(-1, 3).mean(0)
    assert centre[0] > centre[1] and centre[0] > centre[2]


def test_quadrant_colours_differ_between_corridor_ends(renderer: MazeRenderer) -> None:
    east = renderer.render(Pose(x=7.0, y=1.0, angle=0.0)).astype(float)[12:20, 12:20].reshape(-1, 3).mean(0)
    light = np.array([float(v) for v in QUADRANT_COLOURS[1][0].split()])
    assert np.argmax(east) == np.argmax(light)  # teal wall: green/blue dominate, not red
    assert east[0] < east[1]


def test_rendering_is_deterministic_and_shaped(renderer: MazeRenderer) -> None:
    pose = Pose(x=3.25, y=1.0, angle=0.3)
    a, b = renderer.render(pose), renderer.render(pose)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
