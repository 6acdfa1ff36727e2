"""Fruit-swap episodes over the ROS 2 bridge: `df-agent sim franka` + `df-agent deploy ros2`, one pair per seed.

Each episode runs in its own private network namespace (DDS stays on loopback there): the simulated Franka
starts the env's episode SEED (`sim franka --seed SEED`) and the policy node drives it for `--duration` seconds.
The table gives per episode the swap's outcome (from the simulator's report) and the loop's timing (from the
deploy report), then the totals: success rate, loop rate, jitter, deadline misses, policy latency p50/p95.

    python scripts/franka_bridge_episodes.py --checkpoint franka-swap --seeds 10000-10009 --out runs/bridge
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np


def parse_seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last) + 1)) if last else [int(first)]


def run_episode(checkpoint: str, seed: int, duration: float, out: Path, extra: list[str],
                policy_params: list[str], executor: str = "single") -> dict:
    cli = f"{shlex.quote(sys.executable)} -m df_agent.cli.main -q"
    sim, deploy = out / f"sim_{seed}.json", out / f"deploy_{seed}.json"
    params = " ".join([f"--param {shlex.quote(p)}" for p in extra]
                      + [f"--policy-param {shlex.quote(p)}" for p in policy_params])
    # The simulator runs a few seconds longer than the policy, so it is up before the node and reports after.
    script = (f"{cli} sim franka --seed {seed} --duration {duration + 8:.0f} --report {sim} > {out}/sim_{seed}.log "
              f"2>&1 & s=$!; sleep 2; {cli} deploy ros2 --checkpoint {shlex.quote(checkpoint)} --duration {duration} "
              f"--executor {executor} {params} --report {deploy} > {out}/deploy_{seed}.log 2>&1; d=$?; "
              f"wait $s; echo rc $d $?")
    proc = subprocess.run([sys.executable, "-m", "hardware.netns", "bash", "-c", script], capture_output=True,
                          text=True, timeout=duration + 120)
    if not proc.stdout.strip().endswith("rc 0 0"):
        raise RuntimeError(f"episode {seed} failed: {proc.stdout} {proc.stderr}; logs in {out}")
    sim_report, deploy_report = json.loads(sim.read_text()), json.loads(deploy.read_text())
    return {"seed": seed, **sim_report["task"], "loop": deploy_report["loop"], "safety": deploy_report["safety"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="franka-swap", help="checkpoint directory or shipped name")
    parser.add_argument("--seeds", default="10000-10009", help="FIRST-LAST (inclusive) or one seed")
    parser.add_argument("--duration", type=float, default=50.0, help="seconds the policy drives each episode")
    parser.add_argument("--param", action="append", default=[], help="deploy ros2 --param KEY=VALUE")
    parser.add_argument("--policy-param", action="append", default=[],
                        help="deploy ros2 --policy-param KEY=VALUE (e.g. sampling_steps=10)")
    parser.add_argument("--executor", default="single", help="deploy ros2 --executor (multi, single, events)")
    parser.add_argument("--out", type=Path, required=True, help="directory for reports, logs and summary.json")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    episodes = []
    print("| seed | success | time to success (s) | stages | loop Hz | jitter ms | misses | latency p50/p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in parse_seeds(args.seeds):
        episode = run_episode(args.checkpoint, seed, args.duration, args.out, args.param, args.policy_param,
                              args.executor)
        episodes.append(episode)
        loop = episode["loop"]
        print(f"| {seed} | {episode['success']} | {episode['success_time_s']} | {episode['stages_completed']} | "
              f"{loop['rate_hz']} | {loop['jitter_ms']} | {loop['deadline_misses']} | "
              f"{loop['policy_latency_p50_ms']}/{loop['policy_latency_p95_ms']} |", flush=True)
    loops = [e["loop"] for e in episodes]
    summary = {
        "checkpoint": args.checkpoint, "policy_params": args.policy_param, "executor": args.executor,
        "duration_s": args.duration, "episodes": len(episodes),
        "successes": sum(e["success"] for e in episodes),
        "success_rate": sum(e["success"] for e in episodes) / len(episodes),
        "mean_stages": float(np.mean([e["stages_completed"] for e in episodes])),
        "rate_hz_mean": float(np.mean([lp["rate_hz"] for lp in loops])),
        "jitter_ms_mean": float(np.mean([lp["jitter_ms"] for lp in loops])),
        "deadline_misses_total": int(sum(lp["deadline_misses"] for lp in loops)),
        "policy_latency_p50_ms_median": float(np.median([lp["policy_latency_p50_ms"] for lp in loops])),
        "policy_latency_p95_ms_max": float(max(lp["policy_latency_p95_ms"] for lp in loops)),
        "safety_totals": {rule: int(sum(e["safety"].get(rule, 0) for e in episodes))
                          for rule in sorted({r for e in episodes for r in e["safety"]})},
        "per_episode": episodes,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_episode"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
