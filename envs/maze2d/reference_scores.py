"""Reference returns for normalised scores, measured the D4RL way on our environments.

ref_min = mean return of the uniform random policy, ref_max = mean return of the noise-free waypoint
controller, 100 seeded episodes each (seeds 0..99) on the single-goal env of the maze; the multi-goal envs
share them, as in the paper. Two ref_max protocols are measured (docs/maze2d.md, "Reference scores"):

- "d4rl" (default): D4RL's own reference procedure, one controller reused over the 100 episodes, re-planning
  only when the target changes (never, for a fixed goal). This reproduces D4RL's published ref_max on our
  envs, so normalised scores are comparable with the paper's Table 1.
- "replanning": a controller that plans afresh every episode (the stronger expert; `--policy expert`).

`python -m envs.maze2d.reference_scores [--maze umaze ...]` re-measures and rewrites `reference_scores.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from envs.maze2d.maps import MAZES, env_id_for, get_maze

log = logging.getLogger(__name__)
REFERENCE_FILE = Path(__file__).with_name("reference_scores.json")


def load_reference_scores(path: Path = REFERENCE_FILE) -> dict[str, dict]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


PROTOCOLS = ("d4rl", "replanning")
DEFAULT_PROTOCOL = "d4rl"


def reference_scores(maze: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[float, float]:
    """(ref_min, ref_max) measured on our env; D4RL's published values (with a warning) if not measured yet."""
    spec = get_maze(maze)
    if protocol not in PROTOCOLS:
        raise ValueError(f"reference protocol must be one of {PROTOCOLS}, got {protocol!r}")
    measured = load_reference_scores().get(maze)
    if measured is None:
        log.warning("no measured reference scores for %s; using D4RL's published ones", maze)
        return spec.d4rl_ref_min_score, spec.d4rl_ref_max_score
    key = "ref_max_score" if protocol == "d4rl" else "ref_max_score_replanning"
    return float(measured["ref_min_score"]), float(measured[key])


def normalized_score(returns: np.ndarray | float, ref_min: float, ref_max: float) -> np.ndarray:
    """100 * (return - ref_min) / (ref_max - ref_min)."""
    if not ref_max > ref_min:
        raise ValueError(f"reference scores must satisfy ref_max > ref_min, got {ref_min} / {ref_max}")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)


def measure_reference_scores(maze: str, episodes: int = 100, seed: int = 0) -> dict:
    from envs.evaluation import evaluate
    from envs.maze2d.expert import ExpertPolicy
    from policies.random_policy import RandomPolicy

    env_id = env_id_for(maze)
    random_result = evaluate(RandomPolicy(seed=seed), env_id, episodes, seed, progress=False)
    replanning = evaluate(ExpertPolicy(maze, seed=seed), env_id, episodes, seed, progress=False)
    # D4RL's reference script runs its one controller through the episodes in sequence: one env at a time.
    d4rl = evaluate(ExpertPolicy(maze, seed=seed, replan="goal_change"), env_id, episodes, seed, num_envs=1,
                    progress=False)
    return {
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "ref_min_score": float(np.mean(random_result.episode_returns)),
        "ref_max_score": float(np.mean(d4rl.episode_returns)),
        "ref_max_score_replanning": float(np.mean(replanning.episode_returns)),
        "random_return_std": float(np.std(random_result.episode_returns)),
        "expert_return_std": float(np.std(d4rl.episode_returns)),
        "replanning_expert_return_std": float(np.std(replanning.episode_returns)),
        "d4rl_ref_min_score": get_maze(maze).d4rl_ref_min_score,
        "d4rl_ref_max_score": get_maze(maze).d4rl_ref_max_score,
    }


def _write_json_atomic(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--maze", choices=list(MAZES), nargs="+", default=list(MAZES))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    scores = load_reference_scores()
    for maze in args.maze:
        scores[maze] = measure_reference_scores(maze, args.episodes, args.seed)
        log.info("%s: %s", maze, scores[maze])
    _write_json_atomic(REFERENCE_FILE, scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
