"""Copy a checkpoint with its large weight tensors stored as float16, to ship it at half the size.

Tensors with at least --min-elements entries (the weight matrices) are stored as float16; small ones (biases,
normaliser statistics, norms) stay as they are. Loading casts them back to the model's float32 parameters, so
the copy runs exactly like a model whose weights were rounded to float16: evaluate the exported copy, not the
original, before shipping it. The config keeps the source's metadata and records `weights_storage`.

    python scripts/export_half_checkpoint.py runs/teleop/df32/final df_agent/checkpoints/franka-swap
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="checkpoint directory to copy")
    parser.add_argument("out", type=Path, help="directory to write (replaced atomically)")
    parser.add_argument("--min-elements", type=int, default=1024, help="smallest tensor stored as float16")
    args = parser.parse_args(argv)
    import torch

    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint

    if args.out.resolve() == args.source.resolve():
        raise SystemExit("out must differ from source (the source is read while the copy is written)")
    config = read_checkpoint_config(args.source)
    model = load_checkpoint(args.source)
    state = {name: tensor.half() if tensor.is_floating_point() and tensor.numel() >= args.min_elements else tensor
             for name, tensor in model.state_dict().items()}
    halved = sum(t.numel() for t in state.values() if t.dtype == torch.float16)
    metadata = {**config.get("metadata", {}),
                "weights_storage": {"float16_elements": halved, "min_elements": args.min_elements,
                                    "source": str(args.source)}}
    save_checkpoint(args.out, model, metadata, state_dict=state)
    size = (args.out / "model.safetensors").stat().st_size
    print(f"wrote {args.out}: {halved} of {sum(t.numel() for t in state.values())} values as float16, "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
