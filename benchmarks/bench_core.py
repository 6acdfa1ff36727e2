"""Core speed benchmark: training throughput and replan latency, paper unit vs fast unit.

Everything is measured in this one run on this machine; ratios are against baselines run here:
  * replan baseline: Algorithm 2 as written (every row re-runs the whole chain, one unit call per token,
    M x T = 6,600 sequential calls for a 60-token pyramid with 50 steps) on the paper unit, which is
    the call pattern of the authors' implementation;
  * training baseline: the paper unit (one GRUCell call per token).
Settings follow the authors' medium-maze model: 60-dim tokens (frame_stack 10 x [o, a]), latent 128,
hidden 512, 4 MLP layers, K = 1000, x0-prediction.

    python benchmarks/bench_core.py            # full table (a few minutes on 2 cores)
    python benchmarks/bench_core.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from df_agent.diffusion import ddim_step
from df_agent.model import DFModel, DFModelConfig
from df_agent.provenance import with_provenance
from df_agent.sampler import sample
from df_agent.scheduling import pyramid, steps_to_levels


def build(backbone: str, hidden: int) -> DFModel:
    torch.manual_seed(0)
    config = DFModelConfig(token_dim=60, context_dim=4, latent_dim=128, hidden_dim=hidden, mlp_layers=4,
                           backbone=backbone)
    return DFModel(config).eval()


@torch.no_grad()
def literal_algorithm_2(model: DFModel, levels: torch.Tensor, z0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    batch = x.shape[0]
    for m in range(levels.shape[0] - 1):
        z = z0
        x0s = []
        for t in range(levels.shape[1]):
            z, x0 = model.step(z, x[:, t], levels[m, t].expand(batch))
            x0s.append(x0)
        x0 = torch.stack(x0s, dim=1)
        x = ddim_step(x, x0, levels[m].expand(batch, -1), levels[m + 1].expand(batch, -1), model.schedule)
    return x


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def precision_context(bf16: bool) -> contextlib.AbstractContextManager:
    # bf16 autocast: matmuls in bfloat16 (AVX512-BF16 / AMX on CPU, tensor cores on GPU), the rest in fp32.
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def replan_latency(model: DFModel, batch: int, tokens: int, steps: int, literal: bool, repeats: int,
                   bf16: bool = False) -> float:
    levels = steps_to_levels(pyramid(tokens, steps, 1.0), steps, model.num_levels)
    z0 = model.init_latent(torch.randn(batch, 4))
    x = torch.randn(batch, tokens, 60)
    if literal:
        return timed(lambda: literal_algorithm_2(model, levels, z0, x), repeats)

    def run() -> None:
        with torch.no_grad(), precision_context(bf16):
            sample(model, levels, z0, initial_tokens=x)

    return timed(run, repeats)


def training_throughput(model: DFModel, batch: int, tokens: int, repeats: int, bf16: bool = False) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = {"tokens": torch.randn(batch, tokens, 60), "context": torch.randn(batch, 4)}

    def step() -> None:
        with precision_context(bf16):
            loss, _ = model.loss(data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = timed(step, repeats)
    model.eval()
    return batch * tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokens, steps = (20, 10) if args.quick else (60, 50)
    train_batch = 32 if args.quick else 256
    hidden = 512
    results: dict[str, float] = {}
    paper, fast = build("paper", hidden), build("fast", hidden)
    print(f"threads={args.threads} tokens={tokens} steps={steps} hidden={hidden} "
          f"params paper={sum(p.numel() for p in paper.parameters()) / 1e6:.2f}M "
          f"fast={sum(p.numel() for p in fast.parameters()) / 1e6:.2f}M")

    for batch in (1, 32):
        results[f"replan_b{batch}_literal_paper_s"] = replan_latency(paper, batch, tokens, steps, True, 1)
        results[f"replan_b{batch}_paper_s"] = replan_latency(paper, batch, tokens, steps, False, 2)
        results[f"replan_b{batch}_fast_s"] = replan_latency(fast, batch, tokens, steps, False, 2)
        results[f"replan_b{batch}_fast_bf16_s"] = replan_latency(fast, batch, tokens, steps, False, 2, bf16=True)
    results["train_paper_tokens_per_s"] = training_throughput(paper, train_batch, tokens, 3)
    results["train_fast_tokens_per_s"] = training_throughput(fast, train_batch, tokens, 3)
    results["train_fast_bf16_tokens_per_s"] = training_throughput(fast, train_batch, tokens, 3, bf16=True)

    print("\nreplan latency (pyramid, no guidance), seconds; speed-up vs literal Algorithm 2 on the paper unit")
    print(f"{'batch':>5} {'literal/paper':>14} {'ours/paper':>11} {'ours/fast':>10} {'fast+bf16':>10} "
          f"{'x paper':>8} {'x fast':>8} {'x bf16':>8}")
    for batch in (1, 32):
        base = results[f"replan_b{batch}_literal_paper_s"]
        ours_p, ours_f = results[f"replan_b{batch}_paper_s"], results[f"replan_b{batch}_fast_s"]
        ours_b = results[f"replan_b{batch}_fast_bf16_s"]
        print(f"{batch:5d} {base:14.3f} {ours_p:11.3f} {ours_f:10.3f} {ours_b:10.3f} {base / ours_p:8.1f} "
              f"{base / ours_f:8.1f} {base / ours_b:8.1f}")
    paper_tps, fast_tps = results["train_paper_tokens_per_s"], results["train_fast_tokens_per_s"]
    bf16_tps = results["train_fast_bf16_tokens_per_s"]
    print(f"\ntraining tokens/s (batch {train_batch} x {tokens} tokens): paper {paper_tps:,.0f}  "
          f"fast {fast_tps:,.0f} (x{fast_tps / paper_tps:.1f})  "
          f"fast+bf16 {bf16_tps:,.0f} (x{bf16_tps / paper_tps:.1f})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(with_provenance(results), handle, indent=2)


if __name__ == "__main__":
    main()
