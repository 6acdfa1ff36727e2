"""Reference returns for normalised scores, measured the D4RL way on each of our six environments.

ref_min = mean return of the uniform random policy, ref_max = mean return of the noise-free waypoint
controller, 100 seeded episodes each (seeds 0..99), measured on the env id itself and stored per env id in
`reference_scores.json`. Two ref_max protocols are measured (docs/maze2d.md, "Reference scores"):

- "d4rl" (default): D4RL's own reference procedure, one controller reused over the 100 episodes, re-planning
  only when the target changes. On a single-goal env that is never, and this reproduces D4RL's published
  ref_max on our envs. On a multi-goal env the goal changes every episode, so it re-plans every episode.
- "replanning": a controller that plans afresh every episode (the stronger expert; `--policy expert`).
  On a multi-goal env both protocols are the same run.

D4RL, Diffuser and the paper normalised their Multi2D rows with the single-goal maze's references;
`single_goal_reference_scores` gives those (the runner reports both scores).

`python -m envs.maze2d.measure_references [--env ENV_ID ...]` re-measures and rewrites `reference_scores.json`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from envs.maze2d.maps import env_id_for, get_maze, parse_env_id

log = logging.getLogger(__name__)
REFERENCE_FILE = Path(__file__).with_name("reference_scores.json")
PROTOCOLS = ("d4rl", "replanning")
DEFAULT_PROTOCOL = "d4rl"


def load_reference_scores(path: Path = REFERENCE_FILE) -> dict[str, dict]:
    """The measured references, keyed by env id ({} if the file does not exist)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def reference_scores_for_env(env_id: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[float, float]:
    """(ref_min, ref_max) measured on `env_id` itself; D4RL's published values (with a warning) if not measured."""
    spec, _ = parse_env_id(env_id)
    if protocol not in PROTOCOLS:
        raise ValueError(f"reference protocol must be one of {PROTOCOLS}, got {protocol!r}")
    measured = load_reference_scores().get(env_id)
    if measured is None:
        log.warning("no measured reference scores for %s in %s; using D4RL's published ones", env_id, REFERENCE_FILE)
        return spec.d4rl_ref_min_score, spec.d4rl_ref_max_score
    key = "ref_max_score" if protocol == "d4rl" else "ref_max_score_replanning"
    try:
        return float(measured["ref_min_score"]), float(measured[key])
    except KeyError as error:
        raise ValueError(f"{REFERENCE_FILE}: entry {env_id!r} lacks key {error}") from None


def single_goal_reference_scores(env_id: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[float, float]:
    """(ref_min, ref_max) of the single-goal env of `env_id`'s maze: how D4RL/Diffuser/the paper scored Multi2D."""
    spec, _ = parse_env_id(env_id)
    return reference_scores_for_env(env_id_for(spec.name), protocol)


def reference_scores(maze: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[float, float]:
    """(ref_min, ref_max) of the single-goal env of `maze` (the references a maze's dataset metadata carries)."""
    get_maze(maze)  # unknown maze names fail here with a clear message
    return reference_scores_for_env(env_id_for(maze), protocol)


def normalized_score(returns: np.ndarray | float, ref_min: float, ref_max: float) -> np.ndarray:
    """100 * (return - ref_min) / (ref_max - ref_min)."""
    if not ref_max > ref_min:
        raise ValueError(f"reference scores must satisfy ref_max > ref_min, got {ref_min} / {ref_max}")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)
