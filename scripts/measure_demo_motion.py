"""Per-step motion of the scripted fruit-swap demos, as a policy trained on them sees it: the basis of the bridge's
default per-step safety limits (`hardware/config.py`, docs/ros2.md).

    python scripts/measure_demo_motion.py --seeds 0 150 [--out motion.json]

Each demo is recorded exactly as `df-agent data teleop-demos` records it (`record_demonstration`: same seed,
same operator, 20 Hz commands; cameras at 8x8, which changes nothing of the motion) and resampled at 10 Hz by
the importer of `df-agent data import-bags` (package topics YAML): the replay buffer's `action` is the step of
the commanded target from one tick to the next, which is what a policy trained on it commands per step.
Reported: the largest and 99.9th-percentile translation (m) and rotation (rad) per step, how far the
commanded target leads the measured pose (m, rad; the far-target rule bounds that) and the box the commanded
targets stay in (the workspace rule bounds that).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

KEYS = ("translation", "rotation", "lead", "lead_angle")


def episode_motion(episode: dict[str, np.ndarray], steps: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays over the ticks of one imported episode (`steps` from `demo_episodes`; the last tick, a hold, is
    left out of the per-step motion)."""
    target, measured = episode["target_pose"], episode["ee_pose"]
    dot = np.clip(np.abs(np.sum(target[:, 3:] * measured[:, 3:], axis=1)), 0.0, 1.0)
    return {
        "translation": np.linalg.norm(steps[:-1, :3], axis=1),
        "rotation": np.linalg.norm(steps[:-1, 3:6], axis=1),
        "lead": np.linalg.norm(target[:, :3] - measured[:, :3], axis=1),
        "lead_angle": 2.0 * np.arccos(dot),
        "target_position": target[:, :3],
    }


def demo_episodes(seeds: list[int], workdir: pathlib.Path) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Record the demos of `seeds` (bags under `workdir`) and import them: (episode, steps) per episode.

    `steps` [T, 7] are the replay buffer's actions in metres and radians (x `pos_scale`, `rot_scale`): the
    delta of the commanded target per tick, what the bridge receives with `bridge.action_scale` applied."""
    import data
    from data.rosbag_import import BagReport, ImportConfig, derive_actions, read_bag, resample_bag
    from envs.franka_swap.env import FrankaFruitSwapEnv
    from envs.franka_swap.teleop import record_demonstration

    config = ImportConfig.from_yaml(pathlib.Path(data.__file__).parent / "topics_example.yaml")  # import-bags' default
    env = FrankaFruitSwapEnv(image_size=8)
    try:
        for seed in seeds:
            bag = workdir / f"demo_{seed:04d}"
            result = record_demonstration(bag, seed=seed, image_size=8, env=env)
            if not result.success:  # data teleop-demos drops failed demos too
                continue
            streams, markers, _ = read_bag(bag, config)
            scale = np.array([config.action.pos_scale] * 3 + [config.action.rot_scale] * 3 + [1.0])
            for episode in resample_bag(streams, markers, config, BagReport(bag=str(bag))):
                yield episode, derive_actions(episode, config.action) * scale
    finally:
        env.close()


def demo_motion(seeds: list[int], workdir: pathlib.Path) -> list[dict[str, np.ndarray]]:
    """One motion dict (`episode_motion`) per imported episode of the demos of `seeds`."""
    return [episode_motion(episode, steps) for episode, steps in demo_episodes(seeds, workdir)]


def summarize(motions: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"episodes": len(motions), "steps": int(sum(len(m["translation"]) for m in motions))}
    for key in KEYS:
        values = np.concatenate([m[key] for m in motions])
        summary[f"{key}_max"] = round(float(values.max()), 5)
        summary[f"{key}_p999"] = round(float(np.quantile(values, 0.999)), 5)
    positions = np.concatenate([m["target_position"] for m in motions])
    summary["target_position_min"] = [round(float(v), 4) for v in positions.min(axis=0)]
    summary["target_position_max"] = [round(float(v), 4) for v in positions.max(axis=0)]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 150), metavar=("FIRST", "STOP"),
                        help="demo seeds FIRST .. STOP-1 (default 0 150: the 150 demos of docs/imitation.md)")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="also write the summary as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo_motion_") as workdir:
        summary = {"seeds": list(args.seeds), **summarize(demo_motion(list(range(*args.seeds)), pathlib.Path(workdir)))}
    print(json.dumps(summary, indent=2))
    if args.out:
        from df_agent.atomic_io import write_json_atomic
        from df_agent.provenance import provenance

        write_json_atomic(args.out, {**summary, "produced_by": provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
