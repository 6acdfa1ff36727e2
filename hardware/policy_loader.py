"""Load the policy the bridge runs from a checkpoint directory (`config.json` [+ `model.safetensors`]).

The checkpoint's `config.json` names its kind with `policy_type` (or, for a bare DF model, `model_type`);
a loader registered for that kind builds the `Policy`. Nothing here executes code from the checkpoint.
The DF imitation policy of the teleop task registers itself with `register_policy_loader` once it exists;
until then an unknown kind is a clear error listing the kinds that can be loaded.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_json_atomic
from hardware.scripted_policies import ReachTargetPolicy

PolicyLoader = Callable[[Path, dict[str, Any]], Any]
_LOADERS: dict[str, PolicyLoader] = {}
# Kinds whose loader registers itself when its module is imported; imported on first use, so the node never
# imports torch models it does not need.
_LOADER_MODULES: dict[str, str] = {"df_imitation": "policies.df_imitation"}


def register_policy_loader(kind: str, loader: PolicyLoader) -> None:
    _LOADERS[kind] = loader


def known_policy_kinds() -> list[str]:
    return sorted(set(_LOADERS) | set(_LOADER_MODULES))


def load_policy(checkpoint: str | Path) -> Any:
    checkpoint = Path(checkpoint)
    config_path = checkpoint / "config.json"
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint directory {checkpoint} does not exist")
    if not config_path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint: {config_path.name} is missing")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path}: not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    kind = config.get("policy_type", config.get("model_type"))
    if kind is None:
        raise ValueError(f"{config_path}: no 'policy_type' (or 'model_type') key; cannot tell which policy it holds")
    if kind not in _LOADERS and kind in _LOADER_MODULES:
        importlib.import_module(_LOADER_MODULES[kind])
    loader = _LOADERS.get(kind)
    if loader is None:
        raise ValueError(
            f"{config_path}: no policy loader for checkpoint type {kind!r}; loadable types: {known_policy_kinds()} "
            "(register one with hardware.policy_loader.register_policy_loader)"
        )
    return loader(checkpoint, config)


def _load_reach_target(checkpoint: Path, config: dict[str, Any]) -> ReachTargetPolicy:
    try:
        return ReachTargetPolicy(
            target_position=config["target_position"],
            target_quaternion=config.get("target_quaternion"),
            gain=float(config.get("gain", 0.5)),
            max_step=float(config.get("max_step", 0.05)),
            gripper=float(config.get("gripper", 1.0)),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{checkpoint / 'config.json'}: bad reach_target policy config: {error!r}") from error


def write_reach_target_checkpoint(directory: str | Path, target_position: list[float], **options: Any) -> Path:
    """Write a `reach_target` checkpoint directory (config only: this policy has no weights)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"policy_type": "reach_target", "target_position": [float(v) for v in target_position], **options}
    write_json_atomic(directory / "config.json", config)
    return directory


register_policy_loader("reach_target", _load_reach_target)
