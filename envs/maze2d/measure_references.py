"""Re-measure the maze2d reference scores and rewrite `envs/maze2d/reference_scores.json`.

    python -m envs.maze2d.measure_references [--env ENV_ID ...] [--episodes 100] [--seed 0]

The protocols are described in `envs.maze2d.reference_scores`, which reads the file this writes.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from df_agent.atomic_io import write_json_atomic
from envs.evaluation import evaluate
from envs.maze2d.expert import ExpertPolicy
from envs.maze2d.maps import ENV_IDS, parse_env_id
from envs.maze2d.reference_scores import REFERENCE_FILE, load_reference_scores
from policies.random_policy import RandomPolicy

log = logging.getLogger(__name__)


def measure_reference_scores(env_id: str, episodes: int = 100, seed: int = 0) -> dict:
    spec, multi_goal = parse_env_id(env_id)
    random_result = evaluate(RandomPolicy(seed=seed), env_id, episodes, seed, progress=False)
    replanning = evaluate(ExpertPolicy(spec.name, seed=seed), env_id, episodes, seed, progress=False)
    # D4RL's reference script runs its one controller through the episodes in sequence: one env at a time.
    # On a multi-goal env every episode brings a new goal, so it re-plans every episode (same run as replanning).
    d4rl = evaluate(ExpertPolicy(spec.name, seed=seed, replan="goal_change"), env_id, episodes, seed, num_envs=1,
                    progress=False)
    return {
        "env_id": env_id,
        "maze": spec.name,
        "multi_goal": multi_goal,
        "episodes": episodes,
        "seed": seed,
        "ref_min_score": float(np.mean(random_result.episode_returns)),
        "ref_max_score": float(np.mean(d4rl.episode_returns)),
        "ref_max_score_replanning": float(np.mean(replanning.episode_returns)),
        "random_return_std": float(np.std(random_result.episode_returns)),
        "expert_return_std": float(np.std(d4rl.episode_returns)),
        "replanning_expert_return_std": float(np.std(replanning.episode_returns)),
        "d4rl_ref_min_score": spec.d4rl_ref_min_score,
        "d4rl_ref_max_score": spec.d4rl_ref_max_score,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=list(ENV_IDS), nargs="+", default=list(ENV_IDS))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    scores = load_reference_scores()
    for env_id in args.env:
        scores[env_id] = measure_reference_scores(env_id, args.episodes, args.seed)
        log.info("%s: %s", env_id, scores[env_id])
        # After every env, so an interrupted run keeps what it measured.
        write_json_atomic(REFERENCE_FILE, scores, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
