"""One-step denoising quality of video checkpoints, per noise level.

With `--context-tokens` clean tokens of a held-out episode in the latent, the next token is noised to level k and
denoised once. Prints the x0 error (MSE, pixels in [-1, 1]) against the error of the noisy input itself. A model
that samples well must beat the noisy input at every level and never do worse than its own k = K guess (which
uses the history alone). This is how the 16-channel `cpu32` bottleneck was found (docs/video.md).

    python scripts/video_denoising_probe.py --data data/maze32.zarr CHECKPOINT [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse

import torch

from data.replay_buffer import ReplayBuffer
from df_agent.checkpoint import load_checkpoint

LEVELS = (100, 300, 500, 700, 900, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="video_df checkpoint directories")
    parser.add_argument("--data", required=True, help="video episode store (df-agent data video-maze)")
    parser.add_argument("--episode", type=int, default=-10, help="episode index (default: 10th from the end)")
    parser.add_argument("--context-tokens", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    buffer = ReplayBuffer.open(args.data)
    episode = args.episode % buffer.n_episodes
    for path in args.checkpoints:
        model = load_checkpoint(path).eval()
        stack = model.config.frame_stack
        frames = buffer.get_episode(episode, ["video"])["video"][: (args.context_tokens + 1) * stack]
        tokens = model.encode(torch.from_numpy(frames)[None])
        target = tokens[:, args.context_tokens]
        generator = torch.Generator().manual_seed(args.seed)
        print(f"{path} (episode {episode}): x0 MSE of the model's estimate vs of the noisy input")
        with torch.no_grad():
            latent = model.init_latent(1)
            for i in range(args.context_tokens):
                latent, _ = model.step(latent, tokens[:, i], 0)
            for k in LEVELS:
                if k > model.num_levels:
                    continue
                level = torch.tensor([k])
                noise = torch.randn(target.shape, generator=generator)
                noisy = model.schedule.q_sample(target, level, noise)
                _, estimate = model.step(latent, noisy, level)
                alpha_bar = float(model.schedule.alpha_bar(level))
                print(f"  k={k:5d}  alpha_bar {alpha_bar:.3f}  model {float(((estimate - target) ** 2).mean()):.4f}  "
                      f"noisy input {float(((noisy - target) ** 2).mean()):.4f}")


if __name__ == "__main__":
    main()
