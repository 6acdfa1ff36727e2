"""The policies a maze2d evaluation can name (`df-agent eval maze2d --policy NAME`).

`random`, `expert` (the waypoint controller, re-planning every episode), `expert-d4rl` (the controller as D4RL's
reference run used it: re-plans only when the goal changes), `default` (the shipped DF checkpoint of the env's
maze, `default_checkpoint`) or the path of a checkpoint directory (loaded by `policies.loading.load_policy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envs.maze2d.maps import parse_env_id

BUILT_IN = ("random", "expert", "expert-d4rl", "default")


def default_checkpoint(env_id: str) -> Path:
    """The shipped DF checkpoint of this env's maze (df_agent/checkpoints/maze2d-<maze>)."""
    from df_agent.checkpoint import shipped_checkpoint

    spec, _ = parse_env_id(env_id)
    return shipped_checkpoint(f"maze2d-{spec.name}")


def checkpoint_of(name: str, env_id: str) -> Path | None:
    """The checkpoint directory `--policy NAME` runs (None for the policies without one)."""
    if name == "default":
        return default_checkpoint(env_id)
    if name in BUILT_IN:
        return None
    return Path(name)


def build_policy(name: str, env_id: str, seed: int, **planner_overrides: Any) -> Any:
    """The policy NAME for `env_id`; `planner_overrides` go to `load_policy` for a checkpoint (None = not given)."""
    spec, _ = parse_env_id(env_id)  # unknown ids fail here, before anything is built
    if name == "random":
        from policies.random_policy import RandomPolicy

        return RandomPolicy(action_dim=2, seed=seed)
    if name in ("expert", "expert-d4rl"):
        from envs.maze2d.expert import ExpertPolicy

        return ExpertPolicy.for_env(env_id, seed=seed, replan="goal_change" if name == "expert-d4rl" else "episode")
    checkpoint = checkpoint_of(name, env_id)
    if name == "default" and not checkpoint.is_dir():
        raise FileNotFoundError(
            f"no shipped checkpoint for {env_id} at {checkpoint}; pass --policy random, expert or a checkpoint dir"
        )
    if not checkpoint.exists():
        raise ValueError(
            f"--policy {name!r} is neither random, expert, expert-d4rl, default nor an existing checkpoint directory"
        )
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint directory {checkpoint} does not exist")
    missing = [file for file in ("config.json", "model.safetensors") if not (checkpoint / file).exists()]
    if missing:
        raise FileNotFoundError(f"checkpoint directory {checkpoint} lacks {', '.join(missing)}")
    from policies.loading import load_policy

    return load_policy(checkpoint, kind="df_lowdim", maze=spec.name, seed=seed, **planner_overrides)
