"""SwapTask: a fruit-swap episode outside the env starts as the env's episode and reports how far it got."""

from __future__ import annotations

import numpy as np
import pytest

from envs.franka_swap.env import FrankaFruitSwapEnv, episode_start
from envs.franka_swap.evaluation import SwapTask
from envs.franka_swap.scene import FRUIT_NAMES, SLOT_POSITIONS, FrankaScene


@pytest.mark.parametrize("seed", [0, 7, 10_003])
def test_task_for_a_seed_starts_like_the_envs_episode(seed):
    env = FrankaFruitSwapEnv(image_size=16)
    env.reset(seed=seed)
    task = SwapTask.for_seed(seed)
    assert task.initial_layout == env.initial_layout
    scene = FrankaScene(image_size=16)
    scene.reset(seed=task.scene_seed, options=task.reset_options)
    for fruit in FRUIT_NAMES:
        np.testing.assert_allclose(scene.fruit_position(fruit), env.scene.fruit_position(fruit), atol=1e-12)
    np.testing.assert_allclose(scene.joint_positions(), env.scene.joint_positions(), atol=1e-12)
    env.close()
    scene.close()


def test_layouts_differ_between_seeds():
    layouts = {episode_start(seed).layout["apple"] for seed in range(16)}
    assert layouts == {"A", "B"}


def test_outcome_counts_no_progress_then_success_once_swapped():
    task = SwapTask.for_seed(3)
    scene = FrankaScene(image_size=16)
    scene.reset(seed=task.scene_seed, options=task.reset_options)
    task.watch(scene, 0.1)
    outcome = task.outcome(scene)
    assert outcome["success"] is False and outcome["stages_completed"] == 0
    assert outcome["final_layout"] == task.initial_layout
    # Put each fruit in the slot the other started in (gripper open): the swap is done.
    swapped = {fruit: SLOT_POSITIONS[task.initial_layout[other]][:2]
               for fruit, other in (("apple", "orange"), ("orange", "apple"))}
    scene.reset(seed=0, options={"fruit_positions": swapped})
    task.watch(scene, 12.5)
    outcome = task.outcome(scene)
    assert outcome["success"] is True and outcome["success_time_s"] == 12.5 and outcome["stages_completed"] == 3
    # Later moves do not erase a success the episode already had (the env's episode would have ended there).
    scene.reset(seed=0, options=task.reset_options)
    task.watch(scene, 20.0)
    outcome = task.outcome(scene)
    assert outcome["success"] is True and outcome["success_at_end"] is False and outcome["success_time_s"] == 12.5
    scene.close()
