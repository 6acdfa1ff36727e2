"""Scoring a policy named the way `df-agent eval maze2d --policy NAME` names it (`envs.maze2d.policies`) on a
maze2d env: the policy is built, a DF planner's settings are recorded with the result, and the run gets a short
label for result tables (the preset and every setting that differs from it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from envs.evaluation import EvaluationResult, ObservationCorruption, evaluate
from envs.maze2d.policies import build_policy, checkpoint_of

# Planner settings shown in a run label by a short prefix ("" = the value alone); the others as `key=value`.
LABEL_PREFIXES = {"guidance_scale": "g", "mcg_samples": "mcg", "sampling_steps": "steps", "precision": "",
                  "max_horizon": "H", "predicted_obs_level": "pred", "context": "context "}


@dataclass(frozen=True)
class PolicyEvaluation:
    env: str  # env id
    policy: str = "default"  # random | expert | expert-d4rl | CHECKPOINT_DIR | default
    episodes: int = 100
    seed: int = 0  # episode i uses seed SEED + i; also the policy's and planner's seed
    num_envs: int = 32
    # For a DF checkpoint: {"planner": preset or None (df), setting: value or None (not given), ...}; a setting
    # not given keeps the checkpoint's planner_defaults, else the preset's value.
    planner_options: dict[str, Any] = field(default_factory=dict)
    corruption: ObservationCorruption | None = None
    trajectories_png: Path | None = None
    video: Path | None = None
    plan_figure: Path | None = None
    plan_figure_episodes: int = 4
    reference: str = "d4rl"  # ref_max protocol
    progress: bool = True


def planner_record(policy: Any, planner_options: dict[str, Any], checkpoint: Path | None) -> dict[str, Any] | None:
    """What planned, for the result file: the preset, the options asked for, the planner's full config and the
    policy's execution settings; None for a policy without a planner."""
    planner = getattr(policy, "planner", None)
    if planner is None:
        return None
    record = {"preset": planner_options.get("planner") or "df",
              **{key: value for key, value in planner_options.items() if key != "planner"},
              "checkpoint": str(checkpoint)}
    config = getattr(planner, "config", None)
    if is_dataclass(config):
        record["config"] = asdict(config)
    record["replan_every"] = getattr(policy, "replan_every", None)
    record["execution"] = getattr(policy, "execution", None)
    record["effective_predicted_obs_level"] = getattr(policy, "predicted_obs_level", None)
    return record


def run_label(policy_name: str, planner_info: dict[str, Any] | None, corruption: ObservationCorruption | None,
              setting_names: list[str] | tuple[str, ...] = ()) -> str:
    """A short name of what ran: the policy, or the planner preset with every setting given (LABEL_PREFIXES
    first, then `setting_names` in order as key=value), `@CHECKPOINT` for a checkpoint other than the shipped
    one, and the corruption."""
    if planner_info is None:
        label = str(policy_name)
    else:
        label = planner_info["preset"]
        others = [key for key in setting_names if key not in LABEL_PREFIXES]
        for key in (*LABEL_PREFIXES, *others):
            value = planner_info.get(key)
            if value is not None:
                prefix = LABEL_PREFIXES.get(key, f"{key}=")
                label += f" {prefix}{value}" if prefix else f" {value}"
        if policy_name != "default":  # another checkpoint is another model: keep its runs apart in tables
            label += f" @{policy_name}"
    if corruption is not None:
        parts = []
        if corruption.obs_noise_std > 0:
            parts.append(f"noise {corruption.obs_noise_std:g}")
        if corruption.drop_prob > 0:
            parts.append(f"drop {corruption.drop_prob:g}")
        label += f" [{', '.join(parts)}, {'flagged' if corruption.flag else 'unflagged'}]"
    return label


def evaluate_policy(request: PolicyEvaluation) -> EvaluationResult:
    """Build the named policy and run `envs.evaluation.evaluate` on it, with its label and planner record."""
    policy = build_policy(request.policy, request.env, request.seed, **request.planner_options)
    planner_info = planner_record(policy, request.planner_options, checkpoint_of(request.policy, request.env))
    settings = [key for key in request.planner_options if key != "planner"]
    return evaluate(
        policy,
        request.env,
        request.episodes,
        request.seed,
        num_envs=request.num_envs,
        policy_name=request.policy,
        trajectories_png=request.trajectories_png,
        video_path=request.video,
        progress=request.progress,
        reference_protocol=request.reference,
        corruption=request.corruption,
        plan_figure=request.plan_figure,
        plan_figure_episodes=request.plan_figure_episodes,
        label=run_label(request.policy, planner_info, request.corruption, settings),
        planner_info=planner_info,
    )
