"""Maze carving and the exploring agent: structural invariants, no walking through walls, smooth poses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.video_maze.agent import FORWARD, TURN_LEFT, TURN_RIGHT, MazeExplorer
from data.video_maze.maze import bfs, carve_maze, open_cells, quadrant


@pytest.mark.parametrize("seed", range(5))
def test_maze_is_bordered_connected_and_has_open_rooms(seed: int) -> None:
    walls = carve_maze(9, np.random.default_rng(seed))
    assert walls.shape == (9, 9)
    assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
    assert not walls[1::2, 1::2].any(), "every room (odd, odd) must be carved"
    cells = open_cells(walls)
    distance, _ = bfs(walls, cells[0])
    assert set(distance) == set(cells), "all open cells must be reachable"
    assert walls[2::2, 2::2].all(), "pillars between four rooms are never removed"


def test_perfect_maze_without_removal_is_a_tree() -> None:
    walls = carve_maze(9, np.random.default_rng(3), removal_fraction=0.0)
    cells = open_cells(walls)
    edges = sum(1 for r, c in cells for dr, dc in ((0, 1), (1, 0)) if not walls[r + dr, c + dc])
    assert edges == len(cells) - 1  # connected with no loops


def test_wall_removal_adds_loops() -> None:
    tree = carve_maze(9, np.random.default_rng(4), removal_fraction=0.0)
    loopy = carve_maze(9, np.random.default_rng(4), removal_fraction=0.5)
    assert (~loopy).sum() > (~tree).sum()


@pytest.mark.parametrize("size", [4, 3, 10])
def test_bad_maze_size_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="odd"):
        carve_maze(size, np.random.default_rng(0))


def test_quadrants_split_the_grid() -> None:
    assert quadrant((9, 9), (1, 1)) == 0 and quadrant((9, 9), (1, 7)) == 1
    assert quadrant((9, 9), (7, 1)) == 2 and quadrant((9, 9), (7, 7)) == 3


@pytest.mark.parametrize("seed", range(3))
def test_agent_stays_in_corridors_and_moves_smoothly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    walls = carve_maze(9, rng)
    agent = MazeExplorer(walls, rng, steps_per_cell=4, steps_per_turn=4)
    pose = agent.pose()
    for _ in range(400):
        action = agent.step()
        new = agent.pose()
        assert not walls[round(new.y), round(new.x)], "the agent entered a wall block"
        moved = math.hypot(new.x - pose.x, new.y - pose.y)
        turned = (new.angle - pose.angle + math.pi) % (2 * math.pi) - math.pi
        if action == FORWARD:
            assert moved == pytest.approx(0.25, abs=1e-6) and turned == pytest.approx(0.0, abs=1e-6)
        else:
            assert moved == pytest.approx(0.0, abs=1e-6)
            expected = math.pi / 8 if action == TURN_LEFT else -math.pi / 8
            assert action in (TURN_LEFT, TURN_RIGHT) and turned == pytest.approx(expected, abs=1e-6)
        pose = new


def test_agent_visits_every_cell_of_a_small_maze() -> None:
    rng = np.random.default_rng(1)
    walls = carve_maze(7, rng)
    agent = MazeExplorer(walls, rng)
    seen = {agent.cell}
    for _ in range(600):
        agent.step()
        seen.add(agent.cell)
    assert seen == set(open_cells(walls))
