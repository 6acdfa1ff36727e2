"""`df-agent eval maze2d`: score a policy on a maze2d env and write results.json.

`--policy` is `random`, `expert` (waypoint controller, re-plans every episode), `expert-d4rl` (the controller as
D4RL's reference script ran it: re-plans only when the goal changes), a checkpoint directory, or `default`
(the shipped DF checkpoint of the maze).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ENV_IDS = tuple(f"maze2d-{m}{s}-v0" for m in ("umaze", "medium", "large") for s in ("", "-multi"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help=f"env id, one of: {', '.join(ENV_IDS)}")
    parser.add_argument("--policy", default="default", help="random | expert | expert-d4rl | CHECKPOINT_DIR | default")
    parser.add_argument("--episodes", type=int, default=100, help="number of episodes")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED + i")
    parser.add_argument("--num-envs", type=int, default=32, help="environments stepped in lockstep")
    parser.add_argument("--out", type=Path, default=None, help="write results JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="trajectory PNG (default: next to --out)")
    parser.add_argument("--video", type=Path, default=None, help="MP4 of the first episode")
    parser.add_argument(
        "--reference",
        choices=("d4rl", "replanning"),
        default="d4rl",
        help="ref_max protocol (docs/maze2d.md): d4rl = D4RL's reference run. Scores use the env id's own references; "
        "multi-goal results also carry normalized_score_*_single_goal_refs, the paper's Table 1 normalisation",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    planner = parser.add_argument_group("DF checkpoint planner (ignored for random / expert)")
    planner.add_argument("--planner", default="df",
                         choices=("df", "df-no-mcg", "df-ar", "full-sequence", "diffuser-pd"),
                         help="planner preset run on the checkpoint's model (planners/baselines.py)")
    planner.add_argument("--guidance-scale", type=float, default=None, help="goal guidance scale (default: preset)")
    planner.add_argument("--mcg-samples", type=int, default=None, help="Monte Carlo Guidance samples (1 = off)")
    planner.add_argument("--sampling-steps", type=int, default=None, help="DDIM steps per token (default: 50)")


def shipped_checkpoint_dir(env_id: str) -> Path:
    """Where the packaged DF checkpoint of this env's maze lives (filled in by the maze2d-results work)."""
    from envs.maze2d.maps import parse_env_id

    spec, _ = parse_env_id(env_id)
    return Path(__file__).resolve().parents[1] / "checkpoints" / f"maze2d-{spec.name}"


def load_checkpoint_policy(checkpoint_dir: Path, env_id: str, seed: int,
                           planner_options: dict[str, Any] | None = None) -> Any:
    """Build the DF MPC policy from a checkpoint directory (config.json + model.safetensors).

    planner_options: `planner` (a preset name of planners/baselines.py, default "df") and DFPlannerConfig
    overrides such as `guidance_scale`, `mcg_samples`, `sampling_steps` (None values keep the preset's).
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise FileNotFoundError(f"checkpoint directory {checkpoint_dir} does not exist")
    missing = [name for name in ("config.json", "model.safetensors") if not (checkpoint_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"checkpoint directory {checkpoint_dir} lacks {', '.join(missing)}")
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config
    from envs.maze2d.maps import parse_env_id
    from policies.mpc import MPCPolicy

    config = read_checkpoint_config(checkpoint_dir)
    if config.get("model_type") != "df_lowdim":
        raise ValueError(f"{checkpoint_dir} holds a {config.get('model_type')!r} model; maze2d planning needs a "
                         "'df_lowdim' DFModel checkpoint (df-agent train maze2d)")
    spec, _ = parse_env_id(env_id)
    trained_maze = config.get("metadata", {}).get("maze")
    if trained_maze is not None and trained_maze != spec.name:
        raise ValueError(f"{checkpoint_dir} was trained on maze {trained_maze!r} but {env_id} is maze {spec.name!r}")
    options = dict(planner_options or {})
    name = options.pop("planner", None) or "df"
    model = load_checkpoint(checkpoint_dir)
    return MPCPolicy.from_preset(name, model, seed=seed, **options)


def build_policy(name: str, env_id: str, seed: int, planner_options: dict[str, Any] | None = None) -> Any:
    from envs.maze2d.maps import parse_env_id

    parse_env_id(env_id)  # unknown ids fail here, before anything is built
    if name == "random":
        from policies.random_policy import RandomPolicy

        return RandomPolicy(action_dim=2, seed=seed)
    if name == "expert":
        from envs.maze2d.expert import ExpertPolicy

        return ExpertPolicy.for_env(env_id, seed=seed)
    if name == "expert-d4rl":
        from envs.maze2d.expert import ExpertPolicy

        return ExpertPolicy.for_env(env_id, seed=seed, replan="goal_change")
    if name == "default":
        checkpoint = shipped_checkpoint_dir(env_id)
        if not checkpoint.is_dir():
            raise FileNotFoundError(
                f"no shipped checkpoint for {env_id} at {checkpoint}; pass --policy random, expert or a checkpoint dir"
            )
        return load_checkpoint_policy(checkpoint, env_id, seed, planner_options)
    path = Path(name)
    if path.exists():
        return load_checkpoint_policy(path, env_id, seed, planner_options)
    raise ValueError(
        f"--policy {name!r} is neither random, expert, expert-d4rl, default nor an existing checkpoint directory"
    )


def run(args: argparse.Namespace) -> int:
    from envs.evaluation import evaluate

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    planner_options = {"planner": getattr(args, "planner", None),
                       "guidance_scale": getattr(args, "guidance_scale", None),
                       "mcg_samples": getattr(args, "mcg_samples", None),
                       "sampling_steps": getattr(args, "sampling_steps", None)}
    policy = build_policy(args.policy, args.env, args.seed, planner_options)
    plot = args.plot
    if plot is None and args.out is not None:
        plot = args.out.with_suffix(".png")
    result = evaluate(
        policy,
        args.env,
        args.episodes,
        args.seed,
        num_envs=args.num_envs,
        policy_name=args.policy,
        trajectories_png=plot,
        video_path=args.video,
        progress=not args.no_progress,
        reference_protocol=args.reference,
    )
    print(result.table())
    if args.out is not None:
        result.save_json(args.out)
        print(f"results written to {args.out}")
    if plot is not None:
        print(f"trajectories plotted to {plot}")
    return 0
