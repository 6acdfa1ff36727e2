"""Resumable training state, stored without pickle inside a checkpoint's `training_state/` directory:

    state.json             step, train config, LR-schedule state, optimizer hyper-parameters and scalar state,
                           EMA counters, GradScaler state, Python/NumPy RNG scalars
    model.safetensors      the raw (non-EMA) weights the optimizer is updating
    optimizer.safetensors  the optimizer's per-parameter tensors (AdamW: step, exp_avg, exp_avg_sq)
    rng.safetensors        torch CPU/CUDA generator states, NumPy's Mersenne-Twister key, the data generator

The training loop re-seeds its generators from (seed, step, rank) at every update, so the RNG states are not
needed for its own exactness; they are restored anyway so that code around the loop continues its streams.

The EMA weights are the checkpoint's own `model.safetensors` (one copy on disk).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from df_agent.checkpoint import (
    TRAINING_STATE_DIR,
    WEIGHTS_FILE,
    CheckpointError,
    CheckpointNotFoundError,
    describe_state_mismatch,
    load_safetensors,
    read_safetensors_header,
    write_json,
    write_safetensors,
)

STATE_FORMAT = "df-agent-training-state"
STATE_FORMAT_VERSION = 1
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


# ----------------------------------------------------------------------------------------------------------------
# Optimizer state <-> (tensors, JSON)


def optimizer_state_to_flat(optimizer: Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into named tensors (`state.<param index>.<key>`) and a JSON-able rest."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, Tensor):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{key: list(value) if isinstance(value, tuple) else value for key, value in group.items()}
              for group in state_dict["param_groups"]]
    return tensors, {"class": type(optimizer).__name__, "param_groups": groups, "scalars": scalars}


def optimizer_state_from_flat(optimizer: Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any],
                              source: str = "optimizer state") -> None:
    """Inverse of `optimizer_state_to_flat`, checked against the optimizer's parameters before loading."""
    if meta.get("class") != type(optimizer).__name__:
        raise CheckpointError(f"{source}: saved for optimizer {meta.get('class')!r}, not {type(optimizer).__name__}")
    saved_groups = meta["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups):
        raise CheckpointError(f"{source}: {len(saved_groups)} parameter groups saved, optimizer has "
                              f"{len(optimizer.param_groups)}")
    params_by_index: dict[int, Tensor] = {}
    groups = []
    for number, (saved, current) in enumerate(zip(saved_groups, optimizer.param_groups)):
        if len(saved["params"]) != len(current["params"]):
            raise CheckpointError(f"{source}: parameter group {number} has {len(saved['params'])} parameters "
                                  f"saved but {len(current['params'])} in the model")
        params_by_index.update(zip(saved["params"], current["params"]))
        # JSON turned tuples (AdamW's betas) into lists; give them back the type the optimizer uses.
        groups.append({key: tuple(value) if isinstance(current.get(key), tuple) else value
                       for key, value in saved.items()})
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, index_text, key = name.split(".", 2)
        index = int(index_text)
        if index not in params_by_index:
            raise CheckpointError(f"{source}: state for parameter index {index}, which no group contains")
        param = params_by_index[index]
        if tensor.dim() > 0 and tuple(tensor.shape) != tuple(param.shape):
            raise CheckpointError(f"{source}: {name} has shape {list(tensor.shape)}, parameter has "
                                  f"{list(param.shape)}")
        state.setdefault(index, {})[key] = tensor.clone()  # never alias the caller's tensors
    for index_text, values in meta.get("scalars", {}).items():
        state.setdefault(int(index_text), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ----------------------------------------------------------------------------------------------------------------
# RNG states


def capture_rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{index}"] = cuda_state
    bit_generator, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    version, python_state, gauss_next = random.getstate()
    scalars = {
        "numpy": {"bit_generator": bit_generator, "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    return tensors, scalars


def restore_rng_state(tensors: dict[str, Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_states = [tensors[f"torch_cuda.{i}"] for i in range(len(tensors)) if f"torch_cuda.{i}" in tensors]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    numpy_state = scalars["numpy"]
    np.random.set_state((numpy_state["bit_generator"], tensors["numpy_keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = scalars["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))


# ----------------------------------------------------------------------------------------------------------------
# Whole training state


@dataclass
class TrainingState:
    """What `load_training_state` restored besides the tensors it loaded in place."""

    step: int
    train_config: dict[str, Any]
    info: dict[str, Any]


def write_training_state(checkpoint_tmp_dir: Path, *, step: int, model: nn.Module, optimizer: Optimizer,
                         train_config: dict[str, Any], ema_state: dict[str, Any] | None,
                         scaler_state: dict[str, Any] | None, info: dict[str, Any] | None = None,
                         data_generator: torch.Generator | None = None) -> None:
    """Write `training_state/` into a checkpoint directory being assembled (see `save_checkpoint(write_extra=)`)."""
    directory = checkpoint_tmp_dir / TRAINING_STATE_DIR
    directory.mkdir()
    write_safetensors(directory / WEIGHTS_FILE, model.state_dict())
    optimizer_tensors, optimizer_meta = optimizer_state_to_flat(optimizer)
    write_safetensors(directory / OPTIMIZER_FILE, optimizer_tensors)
    rng_tensors, rng_scalars = capture_rng_state()
    if data_generator is not None:
        rng_tensors["data_generator"] = data_generator.get_state()
    write_safetensors(directory / RNG_FILE, rng_tensors)
    write_json(directory / STATE_FILE, {
        "format": STATE_FORMAT,
        "format_version": STATE_FORMAT_VERSION,
        "step": step,
        "train_config": train_config,
        "lr_schedule": {"name": train_config.get("lr_schedule"), "step": step},
        "optimizer": optimizer_meta,
        "ema": ema_state,
        "grad_scaler": scaler_state or None,
        "rng": rng_scalars,
        "data_generator": {"reseeded_from": ["seed", "step", "rank"], "seed": train_config.get("seed")},
        "info": dict(info or {}),
    })


def has_training_state(checkpoint_dir: Path) -> bool:
    return (Path(checkpoint_dir) / TRAINING_STATE_DIR / STATE_FILE).is_file()


def read_training_state_json(checkpoint_dir: Path) -> dict[str, Any]:
    path = Path(checkpoint_dir) / TRAINING_STATE_DIR / STATE_FILE
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path} does not exist: {checkpoint_dir} has no resumable training state "
                                      "(final/exported checkpoints carry only the model)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a df-agent training state (format {state.get('format')!r})")
    if state.get("format_version", 0) > STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {state['format_version']} is newer than this df-agent reads")
    return state


def load_training_state(checkpoint_dir: str | Path, *, model: nn.Module, optimizer: Optimizer,
                        ema_model: nn.Module | None = None, restore_rng: bool = True,
                        data_generator: torch.Generator | None = None) -> TrainingState:
    """Load raw weights into `model`, the optimizer state, EMA weights (from the checkpoint's model.safetensors)
    into `ema_model`, and the RNG states. Returns the step and the saved JSON (EMA counters, scaler state...)."""
    checkpoint_dir = Path(checkpoint_dir)
    directory = checkpoint_dir / TRAINING_STATE_DIR
    state = read_training_state_json(checkpoint_dir)
    _load_weights_into(model, directory / WEIGHTS_FILE)
    optimizer_state_from_flat(optimizer, load_safetensors(directory / OPTIMIZER_FILE), state["optimizer"],
                              source=str(directory / OPTIMIZER_FILE))
    if ema_model is not None:
        _load_weights_into(ema_model, checkpoint_dir / WEIGHTS_FILE)
    if restore_rng:
        rng_tensors = load_safetensors(directory / RNG_FILE)
        restore_rng_state(rng_tensors, state["rng"])
        if data_generator is not None and "data_generator" in rng_tensors:
            data_generator.set_state(rng_tensors["data_generator"])
    return TrainingState(step=int(state["step"]), train_config=state["train_config"], info=state)


def _load_weights_into(model: nn.Module, path: Path) -> None:
    header = read_safetensors_header(path)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    problems = describe_state_mismatch(expected, {name: tuple(e["shape"]) for name, e in header.items()})
    if problems:
        raise CheckpointError(f"{path} does not match the model being trained: " + "; ".join(problems))
    model.load_state_dict(load_safetensors(path), strict=True)
