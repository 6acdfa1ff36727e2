"""The training loop: AdamW + warm-up, gradient clipping, EMA, AMP on CUDA, atomic periodic checkpoints, exact
resume and data-parallel training under `torchrun`.

Run directory layout:

    run_dir/train_config.json
    run_dir/metrics.jsonl                  one JSON record per logged step (rank 0)
    run_dir/checkpoints/step_00001000/     resumable: config.json + model.safetensors (EMA) + training_state/
    run_dir/final/                         the deployable checkpoint: config.json + model.safetensors (EMA)

Exact resume rests on one rule: all randomness of update number `step` comes from generators seeded with
(seed, step, rank) at the start of that update (the data generator handed to `sample_batch`, and torch's global
generator that the model's loss draws noise levels from). Nothing therefore depends on how many steps ran in
this process, on other ranks' generator states (only rank 0 writes checkpoints), or on validation/checkpointing
having happened in between.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from df_agent.atomic_io import write_json_atomic, write_text_atomic
from df_agent.checkpoint import CheckpointError, save_checkpoint
from df_agent.precision import warn_if_slow_bf16
from df_agent.training.batch_source import BatchSource
from df_agent.training.config import TrainConfig
from df_agent.training.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    env_local_rank,
    init_distributed,
    resolve_device,
    shutdown_distributed,
    wrap_for_training,
)
from df_agent.training.ema import EMA
from df_agent.training.lr_schedule import apply_lr, lr_factor
from df_agent.training.state import has_training_state, load_training_state, write_training_state

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
METRICS_FILE = "metrics.jsonl"
TRAIN_CONFIG_FILE = "train_config.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")

# TrainConfig fields that may change between a run and its resumption without changing the optimisation.
_BOOKKEEPING_FIELDS = ("steps", "progress", "log_every", "time_limit_s", "checkpoint_every", "keep_checkpoints",
                       "validate_every", "metrics_jsonl")

# Stream tags so the data and model generators of one step never coincide.
_DATA_STREAM = 0
_MODEL_STREAM = 1
_VALIDATION_STREAM = 2


@dataclass
class TrainResult:
    final_checkpoint: Path | None  # None on ranks other than 0
    last_checkpoint: Path | None  # the last resumable checkpoint written (rank 0)
    start_step: int  # the step this invocation resumed from (0 for a fresh run)
    steps_completed: int  # total optimizer updates done, including earlier invocations
    losses: list[float] = field(default_factory=list)  # this rank's loss of every update run in this invocation
    stopped_early: bool = False
    # Wall seconds spent training, summed over this invocation and every one it resumed from (what a model card
    # reports as the training compute; each invocation's own time limit still counts only its own time).
    train_seconds: float = 0.0


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (SplitMix-quality mixing via NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32).view(np.uint64)[0]
               >> np.uint64(1))


def step_checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step_{step:08d}"


def list_resumable_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in run_dir/checkpoints that carries a training state, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found = []
    if root.is_dir():
        for path in root.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir() and has_training_state(path):
                found.append((int(match.group(1)), path))
    return sorted(found)


def find_latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_resumable_checkpoints(run_dir)
    return found[-1][1] if found else None


def train(
    model: nn.Module,
    data: BatchSource,
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: str | os.PathLike[str] | bool | None = None,
    metadata: Mapping[str, Any] | None = None,
    on_step: Callable[[int, Tensor], bool | None] | None = None,
) -> TrainResult:
    """Train `model` (any nn.Module with `model_type`, `config_dict()` and `loss(batch)`) on batches of `data`.

    resume: None/False starts fresh (and refuses a run_dir that already holds checkpoints); "auto"/True resumes
    from the latest checkpoint in run_dir if there is one; a path resumes from that checkpoint directory.
    metadata: extra entries for every checkpoint's config.json (e.g. a dataset description).
    on_step(step, loss): called after each update with the number of updates done and the (device) loss;
    returning True stops training after writing a resumable checkpoint (every rank must decide alike).
    SIGTERM / SIGUSR1 stop training at the next logged step with a resumable checkpoint (no final one);
    config.time_limit_s stops it the same way but also writes the final checkpoint.
    Under torchrun every rank calls `train` with the same arguments; only rank 0 writes files.
    """
    if not callable(getattr(model, "loss", None)) or not callable(getattr(model, "config_dict", None)):
        raise TypeError(f"{type(model).__name__} does not follow the model contract (loss(batch), config_dict())")
    if not callable(getattr(data, "sample_batch", None)):
        raise TypeError(f"{type(data).__name__} has no sample_batch(batch_size, generator) method")
    run_dir = Path(run_dir)
    device = resolve_device(config.device, env_local_rank())
    ctx = init_distributed(device)
    try:
        return _Trainer(model, data, config, run_dir, device, ctx, metadata or {}).run(resume, on_step)
    finally:
        shutdown_distributed(ctx)


class _Trainer:
    def __init__(self, model: nn.Module, data: BatchSource, config: TrainConfig, run_dir: Path,
                 device: torch.device, ctx: DistributedContext, metadata: Mapping[str, Any]) -> None:
        if config.batch_size % ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the world size {ctx.world_size}")
        self.model = model.to(device).train()
        self.data = data
        self.config = config
        self.run_dir = run_dir
        self.device = device
        self.ctx = ctx
        self.metadata = dict(metadata)
        self.rank_batch_size = config.batch_size // ctx.world_size
        self.precision = self._effective_precision()
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.lr, betas=config.betas,
            eps=config.adam_eps, weight_decay=config.weight_decay, fused=device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.ema = (EMA(model, config.ema_decay, warmup=config.ema_warmup, start_step=config.ema_start_step)
                    if config.ema_decay is not None else None)
        self.data_generator = torch.Generator()
        self.last_checkpoint: Path | None = None
        self.last_grad_norm: Tensor | None = None  # before clipping, of the latest update
        self.earlier_train_seconds = 0.0  # training time of the invocations this one resumed from
        self.invocation_started = time.monotonic()

    # ------------------------------------------------------------------------------------------------------------
    def run(self, resume: str | os.PathLike[str] | bool | None,
            on_step: Callable[[int, Tensor], bool | None] | None) -> TrainResult:
        config = self.config
        start_step = self._resume(resume)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.run_dir / TRAIN_CONFIG_FILE, config.to_dict())
            self._truncate_metrics(start_step)
        trainable = wrap_for_training(self.model, self.device, self.ctx,
                                      find_unused_parameters=config.ddp_find_unused_parameters)
        log.info("training %s (%d parameters) on %s, %s, world size %d, steps %d..%d",
                 type(self.model).__name__, sum(p.numel() for p in self.model.parameters()), self.device,
                 self.precision, self.ctx.world_size, start_step, config.steps)

        losses: list[float] = []
        window = _Window()
        stop_reason: str | None = None
        step = start_step
        started = self.invocation_started = time.monotonic()
        progress = _progress_bar(config, self.ctx, start_step)
        with _redirect_logging(progress), _StopSignals() as signals:
            while step < config.steps:
                loss, tokens, metrics = self._update(trainable, step)
                step += 1
                window.add(loss, tokens, metrics, self.last_grad_norm)
                if progress is not None:
                    progress.update(1)
                if on_step is not None and on_step(step, loss):
                    stop_reason = "requested by on_step"
                log_now = step % config.log_every == 0 or step == config.steps or stop_reason is not None
                if log_now:
                    losses.extend(self._log(window, step, progress))
                    window = _Window()
                    # Signals and the time limit are looked at only here, agreed over ranks, so that every rank
                    # stops after the same update.
                    stop_reason = stop_reason or self._agreed_stop(signals, started)
                if config.validate_every and step % config.validate_every == 0:
                    self._validate(step)
                periodic = config.checkpoint_every and step % config.checkpoint_every == 0
                if periodic or step == config.steps or stop_reason is not None:
                    self._save_resumable(step)
                if stop_reason is not None:
                    break
        if progress is not None:
            progress.close()

        stopped_early = step < config.steps
        if stopped_early:
            log.warning("stopped at step %d of %d (%s); resume with resume='auto'", step, config.steps, stop_reason)
        final = None
        # A time limit is a planned end, so it ships a model; a signal or an on_step request is a pause.
        if (not stopped_early or stop_reason == "time limit") and self.ctx.is_main:
            final = save_checkpoint(self.run_dir / FINAL_DIR, self._weights_model(), self._metadata(step))
            log.info("final checkpoint: %s", final)
        barrier(self.ctx)
        return TrainResult(final, self.last_checkpoint, start_step, step, losses, stopped_early,
                           train_seconds=self._train_seconds())

    # ------------------------------------------------------------------------------------------------------------
    def _update(self, trainable: nn.Module, step: int) -> tuple[Tensor, Tensor, Mapping[str, float]]:
        config = self.config
        apply_lr(self.optimizer, config.lr, lr_factor(step, warmup_steps=config.warmup_steps,
                                                      total_steps=config.steps, schedule=config.lr_schedule,
                                                      min_ratio=config.min_lr_ratio))
        self.data_generator.manual_seed(derive_seed(config.seed, _DATA_STREAM, step, self.ctx.rank))
        batch = self.data.sample_batch(self.rank_batch_size, self.data_generator)
        batch = _to_device(batch, self.device)
        torch.manual_seed(derive_seed(config.seed, _MODEL_STREAM, step, self.ctx.rank))

        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss, metrics = trainable(batch)
        if loss.dim() != 0:
            raise ValueError(f"{type(self.model).__name__}.loss must return a scalar loss, "
                             f"got shape {list(loss.shape)}")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = None
        if config.grad_clip_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip_norm).detach()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, step + 1)
        self.last_grad_norm = grad_norm
        return loss.detach(), _count_tokens(batch), metrics

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _effective_precision(self) -> str:
        # bf16 autocast also runs on CPUs (about 2x faster matmuls where AVX512-BF16/AMX exist, emulated and slower
        # elsewhere: see df_agent.precision); fp16 with a
        # gradient scaler is CUDA-only.
        if self.config.precision == "fp16" and self.device.type != "cuda":
            log.warning("precision fp16 needs CUDA; training in fp32 on %s", self.device)
            return "fp32"
        warn_if_slow_bf16(self.config.precision, self.device, "training")
        return self.config.precision

    # ------------------------------------------------------------------------------------------------------------
    def _log(self, window: _Window, step: int, progress: Any) -> list[float]:
        """Turn the window's device losses into floats (one sync per log interval), log and record them."""
        losses = torch.stack(window.losses).float().cpu().tolist()
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        mean_loss = all_reduce_mean(torch.tensor(sum(losses) / len(losses), device=self.device), self.ctx).item()
        tokens = float(torch.stack(window.tokens).sum().item()) * self.ctx.world_size
        if not all(math.isfinite(v) for v in losses) and self.precision != "fp16":
            bad = step - len(losses) + next(i for i, v in enumerate(losses) if not math.isfinite(v)) + 1
            raise RuntimeError(f"training loss became non-finite at step {bad} (lr {self._lr():.3g}); "
                               "lower the learning rate, enable grad clipping, or check the data")
        record = {"step": step, "loss": mean_loss, "lr": self._lr(), "tokens_per_s": tokens / elapsed,
                  "steps_per_s": len(losses) / elapsed}
        if window.grad_norms:
            norms = torch.stack(window.grad_norms).float()
            record["grad_norm"], record["grad_norm_max"] = norms.mean().item(), norms.max().item()
        for name, total in window.metric_sums.items():
            record[f"model/{name}"] = total / window.metric_counts[name]
        if self.ema is not None:
            record["ema_decay"] = self.ema.current_decay()
        if self.scaler is not None:
            record["grad_scale"] = float(self.scaler.get_scale())
        if self.ctx.is_main:
            log.info("step %d  loss %.5f  lr %.3g  %.0f tok/s", step, mean_loss, record["lr"], record["tokens_per_s"])
            if progress is not None:
                progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{record['lr']:.2e}",
                                     tok_s=f"{record['tokens_per_s']:.0f}")
            self._write_metrics(record)
        return losses

    def _agreed_stop(self, signals: _StopSignals, started: float) -> str | None:
        limit = self.config.time_limit_s
        flags = torch.tensor([float(signals.received is not None),
                              float(limit is not None and time.monotonic() - started >= limit)], device=self.device)
        flags = all_reduce_mean(flags, self.ctx)
        if flags[0] > 0:
            return f"signal {signals.received or 'on another rank'}"
        if flags[1] > 0:
            return "time limit"
        return None

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _write_metrics(self, record: dict[str, Any]) -> None:
        if not self.config.metrics_jsonl:
            return
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _truncate_metrics(self, start_step: int) -> None:
        """After a resume, drop records of steps that ran after the checkpoint (they are about to run again)."""
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError, TypeError):
                if json.loads(line)["step"] <= start_step:
                    kept.append(line)
        write_text_atomic(path, "".join(line + "\n" for line in kept))

    @torch.no_grad()
    def _validate(self, step: int) -> None:
        batches = getattr(self.data, "validation_batches", None)
        if batches is None or not self.ctx.is_main:
            return
        model = self._weights_model()
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        devices = [self.device] if self.device.type == "cuda" else []
        # A fixed seed makes validation losses comparable over time and keeps training randomness untouched.
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(derive_seed(self.config.seed, _VALIDATION_STREAM))
            for batch in batches():
                with self._autocast():
                    loss, _ = model.loss(_to_device(batch, self.device))
                total += float(loss) * _batch_rows(batch)
                count += _batch_rows(batch)
        model.train(was_training)
        if count:
            record = {"step": step, "val_loss": total / count}
            log.info("step %d  validation loss %.5f (%s weights)", step, record["val_loss"],
                     "EMA" if self.ema is not None else "raw")
            self._write_metrics(record)

    # ------------------------------------------------------------------------------------------------------------
    def _weights_model(self) -> nn.Module:
        """The weights a checkpoint ships: the EMA copy when EMA is on."""
        return self.ema.model if self.ema is not None else self.model

    def _train_seconds(self) -> float:
        return self.earlier_train_seconds + (time.monotonic() - self.invocation_started)

    def _metadata(self, step: int) -> dict[str, Any]:
        describe = getattr(self.data, "describe", None)
        data_description = describe() if callable(describe) else {"source": type(self.data).__name__}
        return {
            "step": step,
            "weights": "ema" if self.ema is not None else "raw",
            "ema_decay": self.config.ema_decay,
            "world_size": self.ctx.world_size,
            "precision": self.precision,
            "data": data_description,
            "train_config": self.config.to_dict(),
            "train_seconds": round(self._train_seconds(), 3),
            **self.metadata,
        }

    def _save_resumable(self, step: int) -> None:
        if not self.ctx.is_main:
            return
        target = step_checkpoint_dir(self.run_dir, step)

        def write_state(tmp_dir: Path) -> None:
            write_training_state(
                tmp_dir, step=step, model=self.model, optimizer=self.optimizer,
                train_config=self.config.to_dict(), ema_state=self.ema.state() if self.ema is not None else None,
                scaler_state=self.scaler.state_dict() if self.scaler is not None else None,
                info={"world_size": self.ctx.world_size, "train_seconds": self._train_seconds()},
                data_generator=self.data_generator)

        save_checkpoint(target, self._weights_model(), self._metadata(step), write_extra=write_state)
        self.last_checkpoint = target
        log.info("checkpoint: %s", target)
        if self.config.keep_checkpoints:
            for _, old in list_resumable_checkpoints(self.run_dir)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)

    def _resume(self, resume: str | os.PathLike[str] | bool | None) -> int:
        if resume is None or resume is False:
            existing = list_resumable_checkpoints(self.run_dir)
            if existing:
                raise ValueError(f"{self.run_dir} already holds checkpoints (latest {existing[-1][1].name}); "
                                 "resume from it (resume='auto') or choose another run directory")
            return 0
        if resume is True or resume == "auto":
            checkpoint = find_latest_checkpoint(self.run_dir)
            if checkpoint is None:
                log.info("no checkpoint in %s; starting fresh", self.run_dir)
                return 0
        else:
            checkpoint = Path(resume)
        if not checkpoint.is_dir():
            raise CheckpointError(f"cannot resume: checkpoint directory {checkpoint} does not exist")
        state = load_training_state(checkpoint, model=self.model, optimizer=self.optimizer,
                                    ema_model=self.ema.model if self.ema is not None else None,
                                    data_generator=self.data_generator)
        saved = state.info
        self.earlier_train_seconds = float((saved.get("info") or {}).get("train_seconds", 0.0))
        if self.ema is not None and saved.get("ema"):
            self.ema.load_state(saved["ema"])
        if self.scaler is not None and saved.get("grad_scaler"):
            self.scaler.load_state_dict(saved["grad_scaler"])
        current = self.config.to_dict()
        changed = {key: (value, current.get(key)) for key, value in state.train_config.items()
                   if current.get(key) != value and key not in _BOOKKEEPING_FIELDS}
        if changed:
            log.warning("resuming with a changed train config (saved -> now): %s",
                        ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        if state.step > self.config.steps:
            raise ValueError(f"checkpoint {checkpoint} is at step {state.step}, past the configured steps "
                             f"{self.config.steps}")
        log.info("resumed from %s at step %d", checkpoint, state.step)
        return state.step


class _StopSignals:
    """While active, SIGTERM and SIGUSR1 (what schedulers send before pre-empting a job) request a clean stop:
    the loop writes a resumable checkpoint and returns instead of dying mid-step."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None:
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        import signal

        self.received = signal.Signals(number).name
        log.warning("received %s: stopping after the next logged step with a checkpoint", self.received)

    def __exit__(self, *exc: object) -> None:
        import signal

        for number, previous in self._previous.items():
            signal.signal(number, previous)


@dataclass
class _Window:
    losses: list[Tensor] = field(default_factory=list)
    tokens: list[Tensor] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    metric_sums: dict[str, float] = field(default_factory=dict)
    metric_counts: dict[str, int] = field(default_factory=dict)
    grad_norms: list[Tensor] = field(default_factory=list)

    def add(self, loss: Tensor, tokens: Tensor, metrics: Mapping[str, float] | None,
            grad_norm: Tensor | None = None) -> None:
        self.losses.append(loss)
        self.tokens.append(tokens)
        if grad_norm is not None:
            self.grad_norms.append(grad_norm)
        for name, value in (metrics or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.metric_sums[name] = self.metric_sums.get(name, 0.0) + float(value)
                self.metric_counts[name] = self.metric_counts.get(name, 0) + 1


def _to_device(batch: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    if not isinstance(batch, Mapping):
        raise TypeError(f"sample_batch must return a dict of tensors, got {type(batch).__name__}")
    non_blocking = device.type == "cuda"
    return {key: value.to(device, non_blocking=non_blocking) if isinstance(value, Tensor) else value
            for key, value in batch.items()}


def _count_tokens(batch: Mapping[str, Tensor]) -> Tensor:
    """Real tokens in a batch: the mask's count when there is one, else batch x time of "tokens"."""
    mask = batch.get("mask")
    if isinstance(mask, Tensor):
        return mask.sum().detach()
    tokens = batch.get("tokens")
    if isinstance(tokens, Tensor) and tokens.dim() >= 2:
        return torch.tensor(tokens.shape[0] * tokens.shape[1])
    return torch.tensor(_batch_rows(batch))


def _batch_rows(batch: Mapping[str, Tensor]) -> int:
    for value in batch.values():
        if isinstance(value, Tensor) and value.dim():
            return int(value.shape[0])
    return 1


def _progress_bar(config: TrainConfig, ctx: DistributedContext, start_step: int) -> Any:
    if not (config.progress and ctx.is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)


def _redirect_logging(progress: Any) -> contextlib.AbstractContextManager:
    if progress is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


def iterate_metrics(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The records of run_dir/metrics.jsonl."""
    path = Path(run_dir) / METRICS_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)
