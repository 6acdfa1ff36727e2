"""`TrainConfig`: every knob of the training loop, as a typed dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Settings of `df_agent.training.train`.

    `batch_size` is the global batch: under data-parallel training each of the `world_size` ranks draws
    `batch_size // world_size` samples, so a config means the same optimisation problem on any number of GPUs.
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 2e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_steps: int = 100
    lr_schedule: str = "constant"  # after warm-up: "constant" or "cosine" (decays to min_lr_ratio * lr at `steps`)
    min_lr_ratio: float = 0.0
    grad_clip_norm: float | None = 1.0  # None disables clipping
    ema_decay: float | None = 0.999  # None disables EMA (checkpoints then hold the raw weights)
    ema_warmup: bool = True  # effective decay min(ema_decay, (1 + n) / (10 + n)) after n updates
    ema_start_step: int = 0  # before this step the EMA copies the weights instead of averaging
    precision: str = "fp32"  # "fp32", or autocast "bf16" (CPU or CUDA) / "fp16" (CUDA only, with a GradScaler)
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    seed: int = 0
    checkpoint_every: int = 1000  # 0: only the final checkpoint
    keep_checkpoints: int = 2  # resumable checkpoints kept in run_dir/checkpoints (0 keeps all)
    log_every: int = 50
    validate_every: int = 0  # 0: never (needs a data source with validation_batches())
    metrics_jsonl: bool = True  # append logged metrics to run_dir/metrics.jsonl
    progress: bool = True  # tqdm progress bar (rank 0 only)
    time_limit_s: float | None = None  # stop (checked at logged steps) after this long, with final checkpoint
    ddp_find_unused_parameters: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes recorded with the run

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # JSON gives lists
        problems = []
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("warmup_steps", "checkpoint_every", "keep_checkpoints", "validate_every", "ema_start_step"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.log_every < 1:
            problems.append(f"log_every must be >= 1 (got {self.log_every})")
        if not self.lr > 0:
            problems.append(f"lr must be positive (got {self.lr})")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1) (got {self.betas})")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {LR_SCHEDULES} (got {self.lr_schedule!r})")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            problems.append(f"grad_clip_norm must be positive or None (got {self.grad_clip_norm})")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1) or None (got {self.ema_decay})")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            problems.append(f"time_limit_s must be positive or None (got {self.time_limit_s})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS} (got {self.precision!r})")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            problems.append(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {self.device!r})")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown} (known: {sorted(known)})")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
