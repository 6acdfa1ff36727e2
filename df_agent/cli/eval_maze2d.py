"""`df-agent eval maze2d`: score a policy on a maze2d env and write results.json.

`--policy` is `random`, `expert` (waypoint controller, re-plans every episode), `expert-d4rl` (the controller as
D4RL's reference script ran it: re-plans only when the goal changes), a checkpoint directory, or `default`
(the shipped DF checkpoint of the maze).

Robustness: `--obs-noise STD` (Gaussian noise on the reported x, y) and `--drop-prob P` (each step's observation
dropped) corrupt what the policy sees; `--flag-corruption` (the default when either is given) tells a DF policy
which observations are noisy / missing, `--no-flag-corruption` lets it treat them as clean (envs/evaluation.py).
`--plan-figure PATH` draws the first episodes' plans (red) and trajectories (blue), as the paper's Fig. 14/15.
The run itself is `envs.maze2d.policy_evaluation.evaluate_policy`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PLANNER_PRESETS = ("df", "df-no-mcg", "df-ar", "full-sequence", "diffuser-pd", "df-pd")
ENV_IDS = tuple(f"maze2d-{m}{s}-v0" for m in ("umaze", "medium", "large") for s in ("", "-multi"))
# The planner's seed follows --seed; `sampler` is the nested SamplerConfig, whose fields get flags of their own.
PLANNER_FLAGS_EXCLUDED = ("seed", "sampler")


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
    planner = parser.add_argument_group(
        "DF checkpoint planner (ignored for random / expert)",
        "A planner setting not given here keeps the checkpoint's metadata.planner_defaults, else the preset's value.")
    planner.add_argument("--planner", default="df", choices=PLANNER_PRESETS,
                         help="planner preset run on the checkpoint's model (planners/baselines.py)")
    add_planner_setting_arguments(planner)
    planner.add_argument("--max-horizon", type=int, default=None, metavar="TOKENS",
                         help="cap on the planned tokens (default: the rest of the episode)")
    planner.add_argument("--predicted-obs-level", type=int, default=None, metavar="K",
                         help="noise level at which the plan's prediction replaces a dropped observation "
                         "(default 50 of 1000, policies/mpc.py)")
    planner.add_argument("--context", choices=("observation", "history"), default=None,
                         help="what each plan starts from: the current observation (default, the authors' protocol) "
                         "or the episode's executed tokens run through the latent (filters flagged-noisy observations)")
    stall = parser.add_argument_group(
        "stall back-off (policies/stall_backoff.py)",
        "Scale an env's goal guidance down while its ball makes no progress towards the goal although its plan "
        "predicted some (a plan through a wall), and back up after. Off unless --stall-backoff is given or the "
        "checkpoint's planner_defaults turn it on; --stall-backoff 0 turns it off.")
    stall.add_argument("--stall-backoff", type=float, default=None, metavar="FACTOR",
                       help="guidance multiplier per refused plan, in (0, 1); 0 = off")
    stall.add_argument("--stall-stuck-distance", type=float, default=None, metavar="D",
                       help="the ball got less than D env units closer to the goal since the last plan ... "
                       "(default 0.1)")
    stall.add_argument("--stall-planned-distance", type=float, default=None, metavar="D",
                       help="... while that plan predicted a gain of at least D (default 0.4)")
    stall.add_argument("--stall-recovery", type=float, default=None, metavar="R",
                       help="guidance multiplier per other replan, >= 1, capped at the planner's scale (default 1.25)")
    stall.add_argument("--stall-floor", type=float, default=None, metavar="F",
                       help="lowest guidance as a fraction of the planner's scale (default 0.05)")
    planner.add_argument("--plan-figure", type=Path, default=None, metavar="PATH",
                         help="PNG of the first episodes' plans (red) and executed trajectories (blue)")
    planner.add_argument("--plan-figure-episodes", type=int, default=4, metavar="N",
                         help="panels (episodes) in --plan-figure, 1..6 (default 4)")
    robust = parser.add_argument_group("robustness: corrupt what the policy observes (never the env state)")
    robust.add_argument("--obs-noise", type=float, default=0.0, metavar="STD",
                        help="Gaussian noise std added to the reported x, y every step (env units)")
    robust.add_argument("--drop-prob", type=float, default=0.0, metavar="P",
                        help="probability in [0, 1) that an env step's observation is dropped")
    robust.add_argument("--flag-corruption", action=argparse.BooleanOptionalAction, default=None,
                        help="tell the policy which observations are noisy / missing (default: on when "
                        "--obs-noise or --drop-prob is given); --no-flag-corruption treats them as clean")


def add_planner_setting_arguments(group: argparse._ArgumentGroup) -> None:
    """One flag per DFPlannerConfig / SamplerConfig field (`--guidance-scale`, `--sampling-steps`, ...), default
    None: a setting not given keeps the checkpoint's planner_defaults, else the preset's value."""
    from df_agent.dataclass_args import add_dataclass_arguments
    from df_agent.sampler import SamplerConfig
    from planners.baselines import DF
    from planners.df_planner import SETTING_CHOICES, SETTING_HELP, DFPlannerConfig

    add_dataclass_arguments(group, DFPlannerConfig, help=SETTING_HELP, choices=SETTING_CHOICES,
                            exclude=PLANNER_FLAGS_EXCLUDED, defaults=DF, defaults_name="df preset")
    add_dataclass_arguments(group, SamplerConfig, help=SETTING_HELP, choices=SETTING_CHOICES, defaults=DF.sampler,
                            defaults_name="df preset")


def planner_settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """{setting: value or None} for every planner-setting flag (None = not given)."""
    from df_agent.dataclass_args import dataclass_fields
    from df_agent.sampler import SamplerConfig
    from planners.df_planner import DFPlannerConfig

    names = [f.name for f in (*dataclass_fields(DFPlannerConfig, PLANNER_FLAGS_EXCLUDED),
                              *dataclass_fields(SamplerConfig))]
    return {name: getattr(args, name, None) for name in names}


STALL_FLAGS = {"stall_stuck_distance": "stuck_distance", "stall_planned_distance": "planned_distance",
               "stall_recovery": "recovery", "stall_floor": "floor"}


def stall_backoff_from_args(args: argparse.Namespace) -> Any:
    """The stall_backoff override the flags ask for: None (not given: the checkpoint's default), 0 (off) or a
    dict of StallBackoff fields; the values are checked here, with the flag's name."""
    from policies.stall_backoff import StallBackoff

    factor = getattr(args, "stall_backoff", None)
    fields = {field: getattr(args, flag) for flag, field in STALL_FLAGS.items()
              if getattr(args, flag, None) is not None}
    if factor is None and not fields:
        return None
    if factor == 0:
        if fields:
            raise ValueError("--stall-backoff 0 turns the back-off off; it takes no other --stall-* flag")
        return 0
    if factor is not None:
        fields["factor"] = factor
    try:
        StallBackoff(**fields)
    except ValueError as error:
        raise ValueError(f"--stall-*: {error}") from error
    return fields


def corruption_from_args(args: argparse.Namespace) -> Any:
    """The ObservationCorruption the flags ask for (None for a clean run); bad values fail with the flag's name."""
    import math

    from envs.evaluation import ObservationCorruption

    std = float(getattr(args, "obs_noise", 0.0) or 0.0)
    prob = float(getattr(args, "drop_prob", 0.0) or 0.0)
    if not math.isfinite(std) or std < 0:
        raise ValueError(f"--obs-noise must be a finite std >= 0, got {std}")
    if not (0.0 <= prob < 1.0):
        raise ValueError(f"--drop-prob must be in [0, 1), got {prob}")
    flag = getattr(args, "flag_corruption", None)
    if std == 0 and prob == 0:
        if flag is not None:
            raise ValueError("--flag-corruption / --no-flag-corruption need --obs-noise or --drop-prob")
        return None
    return ObservationCorruption(obs_noise_std=std, drop_prob=prob, flag=True if flag is None else bool(flag),
                                 seed=max(int(args.seed), 0))


def _check_flags(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    max_horizon = getattr(args, "max_horizon", None)
    if max_horizon is not None and max_horizon < 1:
        raise ValueError(f"--max-horizon must be >= 1 token, got {max_horizon}")
    predicted_obs_level = getattr(args, "predicted_obs_level", None)
    if predicted_obs_level is not None and predicted_obs_level < 1:
        raise ValueError(f"--predicted-obs-level must be >= 1, got {predicted_obs_level}")
    figure_episodes = getattr(args, "plan_figure_episodes", 4)
    if not 1 <= figure_episodes <= 6:
        raise ValueError(f"--plan-figure-episodes must be in 1..6, got {figure_episodes}")


def run(args: argparse.Namespace) -> int:
    from envs.maze2d.policy_evaluation import PolicyEvaluation, evaluate_policy

    _check_flags(args)
    corruption = corruption_from_args(args)
    plot = args.plot
    if plot is None and args.out is not None:
        plot = args.out.with_suffix(".png")
    result = evaluate_policy(PolicyEvaluation(
        env=args.env, policy=args.policy, episodes=args.episodes, seed=args.seed, num_envs=args.num_envs,
        planner_options={"planner": getattr(args, "planner", None), **planner_settings_from_args(args),
                         "max_horizon": getattr(args, "max_horizon", None),
                         "predicted_obs_level": getattr(args, "predicted_obs_level", None),
                         "context": getattr(args, "context", None),
                         "stall_backoff": stall_backoff_from_args(args)},
        corruption=corruption, trajectories_png=plot, video=args.video, plan_figure=getattr(args, "plan_figure", None),
        plan_figure_episodes=getattr(args, "plan_figure_episodes", 4), reference=args.reference,
        progress=not args.no_progress))
    print(result.table())
    if args.out is not None:
        from df_agent.provenance import command_of, provenance

        result.produced_by = provenance(command_of(args))
        result.save_json(args.out)
        print(f"results written to {args.out}")
    if plot is not None:
        print(f"trajectories plotted to {plot}")
    if getattr(args, "plan_figure", None) is not None:
        print(f"plans plotted to {args.plan_figure}")
    return 0
