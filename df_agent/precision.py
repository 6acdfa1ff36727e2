"""Whether bf16 autocast pays off on a device, and a warning where it does not.

bf16 autocast is faster than fp32 only where the hardware has bf16 arithmetic: CUDA GPUs with bf16 support,
and CPUs with AVX512-BF16 or AMX. Elsewhere (e.g. an AVX2-only CPU) oneDNN emulates bf16 and every matmul,
forward and backward, becomes several times slower than in fp32, so a run asked for in bf16 to save time
would lose it instead. We warn rather than switch precision: bf16 also changes the numbers a run produces.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def bf16_is_fast(device: torch.device | str) -> bool:
    """True where bf16 autocast runs on native bf16 arithmetic on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch built without oneDNN: no fast bf16 path either
            return False
    return True  # other backends (mps, xpu): no reliable probe; assume the user knows their device


def warn_if_slow_bf16(precision: str, device: torch.device | str, what: str, fast: bool | None = None) -> bool:
    """Log a warning when `precision` is bf16 on a device without native bf16; returns whether it warned.

    `fast` overrides the probe (for callers that already know the answer)."""
    if precision != "bf16":
        return False
    fast = bf16_is_fast(device) if fast is None else fast
    if fast:
        return False
    capability = torch.backends.cpu.get_cpu_capability() if torch.device(device).type == "cpu" else str(device)
    log.warning("%s in bf16 on %s (%s) has no native bf16 arithmetic: bf16 is emulated there and several times "
                "slower than fp32; use --precision fp32", what, torch.device(device), capability)
    return True
