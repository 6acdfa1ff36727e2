"""maze2d env semantics: check_env, seeding, reset options, reward radius, no termination, lengths, physics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.maze2d.env import GOAL_RADIUS, Maze2DEnv
from envs.maze2d.fast_sim import FastPointMass
from envs.maze2d.grid import MazeGrid
from envs.maze2d.maps import ENV_IDS, MAZES

ALL_IDS = list(ENV_IDS)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_passes(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize(
    ("env_id", "steps"), [("maze2d-umaze-v0", 300), ("maze2d-medium-v0", 600), ("maze2d-large-multi-v0", 800)]
)
def test_episode_length_and_no_termination(env_id: str, steps: int) -> None:
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == steps
    _, info = env.reset(seed=0)
    goal = info["goal"]
    env.unwrapped.point_env.set_state(goal.copy(), np.zeros(2))  # sit on the goal: D4RL never terminates
    for t in range(steps):
        _obs, reward, terminated, truncated, info = env.step(np.zeros(2))
        assert not terminated
        assert reward == 1.0
        assert truncated == (t == steps - 1)
    env.close()


def test_identical_seeds_give_identical_episodes() -> None:
    def rollout(seed: int) -> np.ndarray:
        env = gym.make("maze2d-medium-multi-v0")
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(123)
        out = [np.concatenate([obs, info["goal"]])]
        for _ in range(200):
            obs, reward, *_ = env.step(rng.uniform(-1, 1, size=2))
            out.append(np.concatenate([obs, info["goal"], [reward]])[:6])
        env.close()
        return np.stack(out)

    np.testing.assert_array_equal(rollout(7), rollout(7))
    assert not np.array_equal(rollout(7), rollout(8))


def test_single_goal_is_d4rl_cell_and_multi_goal_varies() -> None:
    for name, spec in MAZES.items():
        env = gym.make(f"maze2d-{name}-v0")
        goals = {tuple(env.reset(seed=s)[1]["goal"]) for s in range(5)}
        assert goals == {MazeGrid(spec).cell_to_xy(spec.goal_cell)}
        env.close()
    env = gym.make("maze2d-large-multi-v0")
    goals = np.stack([env.reset(seed=s)[1]["goal"] for s in range(20)])
    assert len({tuple(g) for g in goals.round(6)}) == 20
    assert np.allclose(env.unwrapped.goal, goals[-1])
    env.close()


def test_reset_options_place_start_and_goal() -> None:
    env = gym.make("maze2d-large-v0")
    grid = env.unwrapped.grid
    obs, info = env.reset(seed=3, options={"reset_cell": (5, 4), "goal_cell": np.array([1, 1])})
    assert np.allclose(obs[:2], grid.cell_to_xy((5, 4)), atol=0.1 + 1e-9)
    np.testing.assert_allclose(info["goal"], grid.cell_to_xy((1, 1)))
    assert env.unwrapped.reset_cell == (5, 4)
    with pytest.raises(ValueError, match="wall"):
        env.reset(seed=0, options={"reset_cell": (0, 0)})
    with pytest.raises(ValueError, match="outside"):
        env.reset(seed=0, options={"goal_cell": (40, 1)})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=0, options={"start": (1, 1)})
    env.close()


@pytest.mark.parametrize(("offset", "expected"), [(GOAL_RADIUS - 0.01, 1.0), (GOAL_RADIUS + 0.01, 0.0)])
def test_reward_radius(offset: float, expected: float) -> None:
    env = gym.make("maze2d-umaze-v0")
    _, info = env.reset(seed=0)
    goal = info["goal"]
    # (1, 1) is a dead end open to +x, so goal + (offset, 0) is free space.
    env.unwrapped.point_env.set_state(goal + np.array([offset, 0.0]), np.zeros(2))
    _, reward, _, _, info = env.step(np.zeros(2))
    assert reward == expected
    assert info["success"] == bool(expected)
    env.close()


def test_action_is_clipped_and_bad_actions_rejected() -> None:
    a, b = gym.make("maze2d-umaze-v0").unwrapped, gym.make("maze2d-umaze-v0").unwrapped
    a.reset(seed=1)
    b.reset(seed=1)
    np.testing.assert_array_equal(a.step(np.array([5.0, -3.0]))[0], b.step(np.array([1.0, -1.0]))[0])
    with pytest.raises(ValueError, match="shape"):
        a.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        a.step(np.array([np.nan, 0.0]))


def test_dynamics_timestep_and_velocity_limit() -> None:
    env = gym.make("maze2d-medium-v0").unwrapped
    assert env.dt == pytest.approx(0.01)
    env.reset(seed=0, options={"reset_cell": (1, 1)})
    speeds = []
    for _ in range(60):
        obs, *_ = env.step(np.array([0.0, 1.0]))  # push into the wall above, then keep pushing
        speeds.append(np.abs(obs[2:]).max())
    assert max(speeds) <= 5.0 + 1.0  # clipped to 5 before each step; one step can add at most gear*dt
    assert obs[1] < env.grid.cell_to_xy((1, 1))[1] + 0.5  # the wall holds


def test_fast_sim_matches_env_bit_for_bit() -> None:
    env = gym.make("maze2d-large-v0").unwrapped
    obs, _ = env.reset(seed=5)
    sim = FastPointMass(env.model)
    sim.set_state(obs[:2], obs[2:])
    rng = np.random.default_rng(0)
    for action in rng.uniform(-1.5, 1.5, size=(1500, 2)):  # includes out-of-range actions and wall contacts
        obs, *_ = env.step(action)
        fast = sim.step(float(action[0]), float(action[1]))
        np.testing.assert_array_equal(obs, np.array(fast))


def test_rgb_rendering() -> None:
    env = gym.make("maze2d-umaze-v0", render_mode="rgb_array", width=96, height=96)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # walls, floor, ball: not a blank image
    env.close()


def test_value_iteration_path_around_the_u() -> None:
    grid = MazeGrid(MAZES["umaze"])
    assert grid.path((3, 1), (1, 1)) == [(3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    assert grid.path((1, 1), (1, 1)) == [(1, 1)]
    for _name, spec in MAZES.items():
        g = MazeGrid(spec)
        # breadth-first distances to the goal: value iteration must follow a shortest path
        dist, frontier = {spec.goal_cell: 0}, [spec.goal_cell]
        while frontier:
            cell = frontier.pop(0)
            for nxt in ((cell[0] + 1, cell[1]), (cell[0] - 1, cell[1]), (cell[0], cell[1] + 1), (cell[0], cell[1] - 1)):
                if g.is_free(nxt) and nxt not in dist:
                    dist[nxt] = dist[cell] + 1
                    frontier.append(nxt)
        for start in g.free_cells:
            if start == spec.goal_cell:
                continue
            path = g.path(start, spec.goal_cell)
            assert len(path) == dist[start]
            steps = zip([start, *path[:-1]], path)
            assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in steps)


def test_unknown_maze_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown maze"):
        Maze2DEnv(maze="tiny")
