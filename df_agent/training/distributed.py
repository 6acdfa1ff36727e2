"""torch.distributed set-up for data-parallel training launched by `torchrun` (or any launcher that sets
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT)."""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job. A single process is rank 0 of a world of size 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_process_group: bool = False  # True if init_distributed created the group (and must destroy it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_ranks() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) from the launcher's environment, or None when not launched that way."""
    if "WORLD_SIZE" not in os.environ and "RANK" not in os.environ:
        return None
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        text = os.environ.get(name, os.environ.get("RANK", "0") if name == "LOCAL_RANK" else None)
        if text is None:
            raise ValueError(f"environment variable {name} is missing (RANK and WORLD_SIZE must be set together)")
        try:
            values[name] = int(text)
        except ValueError as error:
            raise ValueError(f"environment variable {name}={text!r} is not an integer") from error
    rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"inconsistent launcher environment: RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}")
    return rank, world, local


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> this rank's GPU if CUDA is available, else CPU; 'cuda' fails clearly without a GPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {spec!r} requested but CUDA is not available (torch {torch.__version__})")
        if spec == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device(spec)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")


def init_distributed(device: torch.device, timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group described by the environment (gloo on CPU, nccl on CUDA); no-op for one process."""
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), env_local_rank(), dist.get_backend())
    ranks = env_ranks()
    if ranks is None or ranks[1] == 1:
        return DistributedContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    rank, world, local = ranks
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    log.info("joined process group: rank %d/%d (local %d), backend %s", rank, world, local, backend)
    return DistributedContext(rank, world, local, backend, owns_process_group=True)


def env_local_rank() -> int:
    ranks = env_ranks()
    return 0 if ranks is None else ranks[2]


def shutdown_distributed(ctx: DistributedContext) -> None:
    if ctx.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Mean of `tensor` over ranks (a copy; the input is left alone)."""
    if not ctx.enabled:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


class LossModule(torch.nn.Module):
    """Routes forward to `model.loss`: DDP syncs gradients only for work done inside its own forward call."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch)


def wrap_for_training(model: torch.nn.Module, device: torch.device, ctx: DistributedContext, *,
                      find_unused_parameters: bool = False) -> torch.nn.Module:
    """A module whose forward(batch) is model.loss(batch), wrapped in DistributedDataParallel when world > 1
    (DDP broadcasts rank 0's weights at construction and averages gradients over ranks in backward)."""
    module: torch.nn.Module = LossModule(model)
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                         find_unused_parameters=find_unused_parameters)
    return module
