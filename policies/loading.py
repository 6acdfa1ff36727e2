"""One way from a checkpoint directory to a `Policy`: `load_policy(checkpoint, **overrides)`.

`config.json` names what a checkpoint holds: `policy_type` for policies that are only settings (`reach_target`),
`model_type` for a trained model. `LOADERS` maps each kind to the function that builds its policy; the file is
read once and handed to that function, which loads the weights (safetensors, never a pickle). Every command
that runs a checkpoint (`eval maze2d`, `eval teleop`, `deploy ros2`) and the Python API go through here.

- `df_lowdim`: `MPCPolicy` over a DF planner preset (maze2d). Overrides: `planner` (preset name), `maze`
  (checked against the maze it was trained on), `max_horizon`, `predicted_obs_level`, `context`, and any
  `DFPlannerConfig` / `SamplerConfig` field; the checkpoint's `metadata.planner_defaults` sit between the
  preset and the overrides.
- `df_imitation`: `DFImitationPolicy` (Franka fruit swap). Overrides: `DFImitationPolicyConfig` fields, over the
  checkpoint's `metadata.policy`.
- `reach_target`: `ReachTargetPolicy` (scripted, no weights); no overrides.
None-valued overrides are ignored (they mean "not given").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_json_atomic

CONFIG_FILE = "config.json"


def load_policy(checkpoint: str | Path, *, kind: str | None = None, **overrides: Any) -> Any:
    """The policy a checkpoint directory holds, with `overrides` applied (None values are ignored).

    kind: the checkpoint kind the caller needs (e.g. "df_lowdim" for maze2d planning); another kind is an error.
    """
    checkpoint = Path(checkpoint)
    config = read_policy_config(checkpoint)
    found = config.get("policy_type", config.get("model_type"))
    config_path = checkpoint / CONFIG_FILE
    if found is None:
        raise ValueError(f"{config_path}: no 'policy_type' (or 'model_type') key; cannot tell which policy it holds")
    if kind is not None and found != kind:
        raise ValueError(f"{checkpoint} holds a {found!r} checkpoint; this needs a {kind!r} one")
    loader = LOADERS.get(found)
    if loader is None:
        raise ValueError(f"{config_path}: no policy loader for checkpoint type {found!r}; loadable types: "
                         f"{known_policy_kinds()}")
    if "policy_type" not in config:  # a trained model: the full checkpoint format applies
        from df_agent.checkpoint import validate_checkpoint_config

        validate_checkpoint_config(config, config_path)
    return loader(checkpoint, config, {key: value for key, value in overrides.items() if value is not None})


def read_policy_config(checkpoint: Path) -> dict[str, Any]:
    """Parse `config.json` of a policy checkpoint directory, with errors that name the file."""
    config_path = checkpoint / CONFIG_FILE
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint directory {checkpoint} does not exist")
    if not config_path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint: {config_path.name} is missing (a checkpoint "
                                "directory holds config.json, and model.safetensors for a trained model)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path}: not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    return config


def known_policy_kinds() -> list[str]:
    return sorted(LOADERS)


# -- one builder per kind -------------------------------------------------------------------------------------
def _load_mpc_policy(checkpoint: Path, config: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from df_agent.checkpoint import load_checkpoint
    from planners.free_space import has_free_space, load_free_space
    from policies.mpc import MPCPolicy

    metadata = config.get("metadata", {})
    maze = overrides.pop("maze", None)
    trained_maze = metadata.get("maze")
    if maze is not None and trained_maze is not None and trained_maze != maze:
        raise ValueError(f"{checkpoint} was trained on maze {trained_maze!r}, not {maze!r}")
    # A checkpoint may carry the planner settings tuned for it (metadata.planner_defaults, e.g. the guidance
    # scale of a maze); they replace the preset's values, and explicit overrides replace them in turn.
    tuned = metadata.get("planner_defaults", {}) or {}
    if not isinstance(tuned, dict):
        raise ValueError(f"{checkpoint / CONFIG_FILE}: metadata.planner_defaults must be an object, got {tuned!r}")
    options = {**tuned, **overrides}
    name = options.pop("planner", None) or "df"
    model = load_checkpoint(checkpoint, config=config)
    # The free-space head (planners/free_space.py) ships beside the model when the checkpoint has one.
    free_space = load_free_space(checkpoint) if has_free_space(checkpoint) else None
    return MPCPolicy.from_preset(name, model, free_space=free_space, **options)


def _load_imitation_policy(checkpoint: Path, config: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from policies.df_imitation import load_df_imitation_policy

    return load_df_imitation_policy(checkpoint, config, **overrides)


def _load_reach_target(checkpoint: Path, config: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from policies.scripted import ReachTargetPolicy

    if overrides:
        raise ValueError(f"a reach_target policy takes no overrides, got {sorted(overrides)}")
    try:
        return ReachTargetPolicy(
            target_position=config["target_position"],
            target_quaternion=config.get("target_quaternion"),
            gain=float(config.get("gain", 0.5)),
            max_step=float(config.get("max_step", 0.05)),
            gripper=float(config.get("gripper", 1.0)),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{checkpoint / CONFIG_FILE}: bad reach_target policy config: {error!r}") from error


LOADERS: dict[str, Callable[[Path, dict[str, Any], dict[str, Any]], Any]] = {
    "df_lowdim": _load_mpc_policy,
    "df_imitation": _load_imitation_policy,
    "reach_target": _load_reach_target,
}


def write_reach_target_checkpoint(directory: str | Path, target_position: list[float], **options: Any) -> Path:
    """Write a `reach_target` checkpoint directory (config only: this policy has no weights)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"policy_type": "reach_target", "target_position": [float(v) for v in target_position], **options}
    write_json_atomic(directory / CONFIG_FILE, config)
    return directory
