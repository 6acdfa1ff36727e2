"""Command-line flags for every `TrainConfig` field, for `df-agent train ...` commands.

    add_train_arguments(parser, defaults=TrainConfig(steps=50_000, ...))   # in a command's add_arguments
    config = train_config_from_args(args, defaults=...)                    # in its run()
    train(model, data, config, args.run_dir, resume=args.resume)

Precedence: command defaults < `--train-config FILE` (JSON or YAML with TrainConfig keys) < explicit flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from df_agent.training.config import LR_SCHEDULES, PRECISIONS, TrainConfig

_INT = ("steps", "batch_size", "warmup_steps", "checkpoint_every", "keep_checkpoints", "log_every",
        "validate_every", "ema_start_step", "seed")
_FLOAT = ("lr", "weight_decay", "adam_eps", "min_lr_ratio")
_OPTIONAL_FLOAT = ("grad_clip_norm", "ema_decay", "time_limit_s")
_BOOL = ("ema_warmup", "metrics_jsonl", "progress", "ddp_find_unused_parameters")
_CHOICES = {"lr_schedule": LR_SCHEDULES, "precision": PRECISIONS}
_OTHER = ("betas", "device", "extra")

_HELP = {
    "steps": "total optimizer updates", "batch_size": "global batch size (split over data-parallel ranks)",
    "lr": "peak AdamW learning rate", "weight_decay": "AdamW weight decay", "adam_eps": "AdamW epsilon",
    "warmup_steps": "linear learning-rate warm-up updates", "lr_schedule": "schedule after warm-up",
    "min_lr_ratio": "cosine floor as a fraction of lr", "grad_clip_norm": "gradient-norm clip ('none' disables)",
    "ema_decay": "EMA decay of the shipped weights ('none' disables EMA)", "ema_warmup": "warm the EMA decay up",
    "ema_start_step": "copy instead of averaging until this step", "precision": "autocast precision (CUDA only)",
    "seed": "seed of all training randomness", "checkpoint_every": "resumable checkpoint period (0: end only)",
    "keep_checkpoints": "resumable checkpoints kept (0: all)", "log_every": "log period in updates",
    "validate_every": "validation period (0: never)", "metrics_jsonl": "append metrics to run_dir/metrics.jsonl",
    "progress": "show a progress bar",
    "time_limit_s": "stop after this many seconds, writing the final model ('none': no limit)",
    "ddp_find_unused_parameters": "DDP find_unused_parameters",
}


class _Disabled:
    """Parsed value of `--grad-clip-norm none`: distinct from None, which means the flag was not given."""

    def __repr__(self) -> str:
        return "none"


_DISABLED = _Disabled()


def _optional_float(text: str) -> float | _Disabled:
    return _DISABLED if text.lower() in ("none", "off", "null") else float(text)


def add_train_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig | None = None,
                        *, run_dir_default: str | None = None) -> None:
    """Add --run-dir, --resume, --train-config and one flag per TrainConfig field (shown with its default)."""
    defaults = defaults or TrainConfig()
    group = parser.add_argument_group("training")
    group.add_argument("--run-dir", type=Path, default=run_dir_default, required=run_dir_default is None,
                       help="directory for checkpoints, metrics and the final model")
    group.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                       help="resume from the latest checkpoint in --run-dir, or from CHECKPOINT")
    group.add_argument("--train-config", type=Path, default=None, metavar="FILE",
                       help="JSON/YAML file of TrainConfig fields (flags given here override it)")
    for name in (*_INT, *_FLOAT, *_OPTIONAL_FLOAT, *_BOOL, *_CHOICES, "betas", "device"):
        flag = "--" + name.replace("_", "-")
        help_text = f"{_HELP.get(name, name)} (default: {getattr(defaults, name)})"
        if name in _INT:
            group.add_argument(flag, type=int, default=None, help=help_text)
        elif name in _FLOAT:
            group.add_argument(flag, type=float, default=None, help=help_text)
        elif name in _OPTIONAL_FLOAT:
            group.add_argument(flag, type=_optional_float, default=None, help=help_text)
        elif name in _BOOL:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif name in _CHOICES:
            group.add_argument(flag, choices=_CHOICES[name], default=None, help=help_text)
        elif name == "betas":
            group.add_argument(flag, type=float, nargs=2, default=None, metavar=("BETA1", "BETA2"), help=help_text)
        else:
            group.add_argument(flag, default=None, help="auto, cpu, cuda or cuda:N " + help_text)


def train_config_from_args(args: argparse.Namespace, defaults: TrainConfig | None = None) -> TrainConfig:
    values: dict[str, Any] = (defaults or TrainConfig()).to_dict()
    if getattr(args, "train_config", None) is not None:
        values.update(load_train_config_file(args.train_config))
    explicit = {name: getattr(args, name) for name in values if getattr(args, name, None) is not None}
    values.update({name: None if value is _DISABLED else value for name, value in explicit.items()})
    return TrainConfig.from_dict(values)


def load_train_config_file(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FileNotFoundError(f"cannot read train config {path}: {error}") from error
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {error}") from error
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of TrainConfig fields, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown TrainConfig keys {unknown}")
    return data


def _covered_fields() -> set[str]:
    return {*_INT, *_FLOAT, *_OPTIONAL_FLOAT, *_BOOL, *_CHOICES, *_OTHER}
