"""Evaluation of a policy on the simulated Franka fruit swap (FrankaFruitSwap-v0): the task's `Runner`.

    records = FrankaSwapRunner(corruption="occlusion", num_envs=4).run(policy, episodes=50, seed=10_000)
    summary = summarize(records)

Per episode: success (both fruits swapped), the swap's moves done so far (`stages_completed`, 0-3: partial
progress and a memory probe, since after move 1 the right next move depends on the initial layout), whether a
fruit was ever lifted, and how many corrupted frames the policy saw. The policy is batched: `reset(num_envs,
seed)` per batch, `act({key: [B, ...]}) -> [B, 7]` per step; an env that finished is not stepped again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.runner import Recorder


@dataclass
class FrankaSwapRunner:
    corruption: str = "none"  # "none", "distractor" or "occlusion" (envs/franka_swap/env.py)
    num_envs: int = 1
    max_steps: int = 500
    image_size: int = 32
    progress: bool = False
    recorders: tuple[Recorder, ...] = ()

    def run(self, policy: Any, episodes: int, seed: int = 0) -> list[dict[str, Any]]:
        """One record per episode (episode i uses seed `seed + i`)."""
        from tqdm import tqdm

        from envs.franka_swap.env import FrankaFruitSwapEnv

        for recorder in self.recorders:
            recorder.check(policy)
        envs = [FrankaFruitSwapEnv(image_size=self.image_size, corruption=self.corruption)
                for _ in range(min(self.num_envs, episodes))]
        records: list[dict[str, Any]] = []
        bar = tqdm(total=episodes, desc="episodes", unit="ep", disable=not self.progress)
        try:
            for first in range(0, episodes, len(envs)):
                seeds = [seed + i for i in range(first, min(episodes, first + len(envs)))]
                records += self._run_batch(policy, envs[: len(seeds)], first, seeds)
                bar.update(len(seeds))
                bar.set_postfix(success=f"{sum(r['success'] for r in records)}/{len(records)}")
        finally:
            bar.close()
            for env in envs:
                env.close()
            for recorder in self.recorders:
                recorder.close()
        return records

    def _run_batch(self, policy: Any, active: list[Any], first: int, seeds: list[int]) -> list[dict[str, Any]]:
        observations = [env.reset(seed=s)[0] for env, s in zip(active, seeds)]
        layouts = [dict(env.initial_layout) for env in active]
        policy.reset(num_envs=len(seeds), seed=seeds[0])
        for recorder in self.recorders:
            recorder.start_batch(first, active, observations)
        done = [False] * len(seeds)
        stages = [0] * len(seeds)
        lifted = [False] * len(seeds)
        success = [False] * len(seeds)
        steps = [0] * len(seeds)
        corrupted = [0] * len(seeds)
        for t in range(self.max_steps):
            batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
            actions = policy.act(batch)
            for recorder in self.recorders:
                recorder.after_act(t, policy)
            for i, env in enumerate(active):
                if done[i]:
                    continue
                corrupted[i] += int(np.asarray(observations[i]["corrupted"]).any())
                observations[i], _, terminated, truncated, info = env.step(actions[i])
                steps[i] += 1
                stages[i] = max(stages[i], stages_done(layouts[i], env.current_layout()))
                lifted[i] = lifted[i] or fruit_lifted(env)
                if terminated or truncated:
                    done[i], success[i] = True, bool(info["is_success"])
            for recorder in self.recorders:
                recorder.after_step(t, active, observations)
            if all(done):
                break
        for recorder in self.recorders:
            recorder.end_batch()
        return [{"seed": seeds[i], "success": success[i], "steps": steps[i], "initial_layout": layouts[i],
                 "final_layout": env.current_layout(), "stages_completed": 3 if success[i] else stages[i],
                 "lifted_a_fruit": lifted[i], "corrupted_frames": corrupted[i]} for i, env in enumerate(active)]


class VideoRecorder(Recorder):
    """The first episode as an H.264 MP4 (`df_agent.media`): the front and wrist cameras side by side, rendered
    at `size` pixels (the policy sees 32), one frame per env step (10 fps, real time)."""

    def __init__(self, path: str | Path, size: int = 240, cameras: tuple[str, ...] = ("front", "wrist")) -> None:
        self.requested, self.size, self.cameras = Path(path), int(size), tuple(cameras)
        self.path: Path | None = None  # the file written (a GIF without an H.264 encoder)
        self._writer: Any = None
        self._env: Any = None
        self._last_time: float | None = None

    def start_batch(self, first_episode: int, envs: Any, observations: Any) -> None:
        if first_episode != 0:
            return
        from df_agent.media import VideoWriter

        self._env = envs[0]
        self._writer = VideoWriter(self.requested, fps=1.0 / self._env.dt)
        self._frame()

    def after_step(self, step: int, envs: Any, observations: Any) -> None:
        if self._writer is not None and self._env.scene.time != self._last_time:  # a finished env is not stepped
            self._frame()

    def end_batch(self) -> None:
        if self._writer is not None:
            self.path = self._writer.close()
            self._writer = None

    def close(self) -> None:
        if self._writer is not None:  # an error ended the batch
            self._writer.abort()
            self._writer = None

    def _frame(self) -> None:
        scene = self._env.scene
        self._last_time = scene.time
        self._writer.append(np.concatenate([scene.render(camera, size=self.size) for camera in self.cameras], axis=1))


def evaluate(policy: Any, episodes: int, seed: int, corruption: str, num_envs: int, max_steps: int,
             progress: bool = False) -> list[dict[str, Any]]:
    """Run `episodes` seeded episodes of FrankaFruitSwap-v0 with `policy`; one record per episode."""
    runner = FrankaSwapRunner(corruption=corruption, num_envs=num_envs, max_steps=max_steps, progress=progress)
    return runner.run(policy, episodes, seed)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Success rate, successes, mean stages completed and the rate of episodes that lifted a fruit."""
    successes = sum(r["success"] for r in records)
    return {"success_rate": successes / len(records), "successes": successes,
            "mean_stages_completed": sum(r["stages_completed"] for r in records) / len(records),
            "lifted_a_fruit_rate": sum(r["lifted_a_fruit"] for r in records) / len(records),
            "episodes": len(records)}


def stages_done(initial: dict[str, str], layout: dict[str, str | None]) -> int:
    """Moves of the swap through C done so far (0-2; 3 = success): partial progress, and a memory probe,
    since after move 1 the right next move depends on the initial layout."""
    from envs.franka_swap.teleop import swap_moves

    (first, _, _), (second, _, _), _ = swap_moves(initial)
    if layout[first] == "C" and layout[second] == "A":
        return 2
    if layout[first] == "C" and layout[second] == initial[second]:
        return 1
    return 0


def fruit_lifted(env: Any) -> bool:
    from envs.franka_swap.scene import FRUIT_NAMES, FRUIT_RADIUS

    return any(env.scene.fruit_position(f)[2] > FRUIT_RADIUS[f] + 0.03 for f in FRUIT_NAMES)


@dataclass
class SwapTask:
    """A fruit-swap episode run outside the env (the simulated robot behind ROS 2): where it starts, how far it got.

    `for_seed(S)` starts as the env's episode `reset(seed=S)` does, so a run over the ROS 2 bridge and an
    `eval teleop` episode with the same seed begin from the same layout. `watch(scene, time_s)`, called
    periodically, records the most moves done and when the swap first succeeded (as the env's episode would
    have ended there)."""

    initial_layout: dict[str, str]
    reset_options: dict[str, Any]
    scene_seed: int
    most_stages: int = 0
    success_time_s: float | None = None

    @classmethod
    def for_seed(cls, seed: int) -> SwapTask:
        from envs.franka_swap.env import episode_start

        start = episode_start(seed)
        return cls(start.layout, {"fruit_positions": start.fruit_positions}, start.scene_seed)

    def watch(self, scene: Any, time_s: float) -> None:
        from envs.franka_swap.env import swap_succeeded

        if self.success_time_s is None and swap_succeeded(scene, self.initial_layout):
            self.success_time_s = float(time_s)
            self.most_stages = 3
        elif self.most_stages < 3:
            self.most_stages = max(self.most_stages, stages_done(self.initial_layout, self._layout(scene)))

    def outcome(self, scene: Any) -> dict[str, Any]:
        """Initial and final layout, most moves done (0-3), whether and when the swap succeeded."""
        from envs.franka_swap.env import swap_succeeded

        success_at_end = swap_succeeded(scene, self.initial_layout)
        return {"initial_layout": dict(self.initial_layout), "final_layout": self._layout(scene),
                "stages_completed": 3 if success_at_end else self.most_stages,
                "success": self.success_time_s is not None or success_at_end, "success_time_s": self.success_time_s,
                "success_at_end": success_at_end}

    @staticmethod
    def _layout(scene: Any) -> dict[str, str | None]:
        from envs.franka_swap.scene import FRUIT_NAMES

        return {fruit: scene.slot_of(fruit) for fruit in FRUIT_NAMES}
