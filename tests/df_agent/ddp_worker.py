"""Worker for test_ddp.py, launched as `python -m torch.distributed.run --nproc_per_node 2 ddp_worker.py OUT`.

Each rank (gloo on CPU) writes its results under OUT:
  grads_rank{r}.safetensors   gradients of one DDP backward on this rank's half of a fixed batch
  train_rank{r}.json          what `train` returned (a 6-step run, then a resume to step 9)
  weights_rank{r}.safetensors the raw weights each rank ends with
  dfmodel_rank{r}.json        a 3-step run of the real DFModel
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from training_testkit import NoisySines, fitted_tiny_model

from df_agent.training import TrainConfig, train
from df_agent.training.distributed import init_distributed, wrap_for_training

FULL_BATCH = 8


def fixed_batch() -> dict[str, torch.Tensor]:
    """The batch the test also feeds to a single process; noise and levels fixed so both sides see the same loss."""
    generator = torch.Generator().manual_seed(2024)
    batch = NoisySines().sample_batch(FULL_BATCH, generator)
    batch["alpha_bar"] = torch.rand(batch["tokens"].shape[:2], generator=generator)
    batch["noise"] = torch.randn(batch["tokens"].shape, generator=generator)
    return batch


def gradient_check(ctx, out: Path) -> None:
    # Different initial weights per rank: DDP must broadcast rank 0's before the first step.
    model = fitted_tiny_model(seed=ctx.rank)
    module = wrap_for_training(model, torch.device("cpu"), ctx)
    shard = FULL_BATCH // ctx.world_size
    batch = {k: v[ctx.rank * shard:(ctx.rank + 1) * shard] for k, v in fixed_batch().items()}
    loss, _ = module(batch)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    save_file(grads, str(out / f"grads_rank{ctx.rank}.safetensors"))


def training_run(ctx, out: Path) -> None:
    config = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=2, checkpoint_every=3, log_every=2,
                         device="cpu", progress=False, seed=0)
    first = train(fitted_tiny_model(seed=ctx.rank), NoisySines(), config, out / "run")
    model = fitted_tiny_model(seed=10 + ctx.rank)
    second = train(model, NoisySines(), config.replace(steps=9), out / "run", resume="auto")
    report = {
        "first": {"start": first.start_step, "done": first.steps_completed, "final": str(first.final_checkpoint),
                  "losses": first.losses},
        "second": {"start": second.start_step, "done": second.steps_completed, "losses": second.losses,
                   "final": str(second.final_checkpoint)},
    }
    (out / f"train_rank{ctx.rank}.json").write_text(json.dumps(report))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(out / f"weights_rank{ctx.rank}.safetensors"))


def dfmodel_run(ctx, out: Path) -> None:
    """The real DFModel under DDP: every parameter must take part in the loss, or DDP fails on the 2nd step."""
    from df_agent.model import DFModel, DFModelConfig

    torch.manual_seed(ctx.rank)
    model = DFModel(DFModelConfig(token_dim=3, context_dim=2, latent_dim=16, hidden_dim=32, mlp_layers=2,
                                  num_levels=100, backbone="fast"))
    config = TrainConfig(steps=3, batch_size=8, checkpoint_every=0, log_every=1, device="cpu", progress=False)
    result = train(model, NoisySines(), config, out / "dfmodel_run")
    (out / f"dfmodel_rank{ctx.rank}.json").write_text(json.dumps({"done": result.steps_completed,
                                                                  "losses": result.losses}))


def main() -> None:
    out = Path(sys.argv[1])
    ctx = init_distributed(torch.device("cpu"))
    assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
    gradient_check(ctx, out)
    training_run(ctx, out)
    dfmodel_run(ctx, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
