"""maze2d and the Franka swap implement one Runner interface; recorders see the rollout loop's steps."""

from __future__ import annotations

from envs.evaluation import Maze2DRunner
from envs.franka_swap.evaluation import FrankaSwapRunner
from envs.maze2d.expert import ExpertPolicy
from envs.runner import Recorder, Runner


class CountingRecorder(Recorder):
    def __init__(self):
        self.calls = {"check": 0, "start_batch": [], "after_act": 0, "after_step": 0, "end_batch": 0, "close": 0}

    def check(self, policy):
        self.calls["check"] += 1

    def start_batch(self, first_episode, envs, observations):
        self.calls["start_batch"].append((first_episode, len(envs)))

    def after_act(self, step, policy):
        self.calls["after_act"] += 1

    def after_step(self, step, envs, observations):
        self.calls["after_step"] += 1

    def end_batch(self):
        self.calls["end_batch"] += 1

    def close(self):
        self.calls["close"] += 1


def test_both_tasks_implement_the_runner_interface():
    assert isinstance(Maze2DRunner("maze2d-umaze-v0"), Runner)
    assert isinstance(FrankaSwapRunner(), Runner)


def test_maze2d_runner_calls_its_recorders_at_every_step():
    recorder = CountingRecorder()
    runner = Maze2DRunner("maze2d-umaze-v0", num_envs=2, recorders=[recorder], progress=False)
    result = runner.run(ExpertPolicy.for_env("maze2d-umaze-v0"), episodes=3, seed=0)
    assert result.episodes == 3 and [r.seed for r in result.records] == [0, 1, 2]
    steps = result.max_episode_steps
    assert recorder.calls == {"check": 1, "start_batch": [(0, 2), (2, 1)], "after_act": 2 * steps,
                              "after_step": 2 * steps, "end_batch": 2, "close": 1}
