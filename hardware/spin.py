"""Spin an executor in the calling thread until a duration passes or SIGINT/SIGTERM arrives.

rclpy's own signal handler would shut the context down on Ctrl-C before the bridge could command its hold
pose; the CLIs therefore start rclpy without it and stop here, then run their orderly shutdown. Spinning
in the calling thread keeps single-threaded work (MuJoCo rendering, whose GL context belongs to the thread
that created it) on the main thread; a MultiThreadedExecutor still runs callbacks on its pool.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any


def spin_once(executor: Any, timeout_sec: float) -> None:
    """`executor.spin_once` that survives entities destroyed by a callback on another thread.

    A lifecycle cleanup/shutdown (a service callback on the executor's pool) destroys subscriptions and
    publishers while this thread may be building the next wait set from them; rclpy then raises
    InvalidHandle for the destroyed entity. The entity is gone, so the right thing is to wait again.
    """
    from rclpy._rclpy_pybind11 import InvalidHandle

    with contextlib.suppress(InvalidHandle):
        executor.spin_once(timeout_sec=timeout_sec)


def spin_until_stopped(executor: Any, duration: float | None, should_stop: Callable[[], bool] | None = None) -> str:
    """Spin; returns why it stopped: 'duration', 'signal' or 'condition'.

    Publishing needs no spinning, so a node can still command its hold pose after this returns.
    """
    reason = {"why": ""}

    def on_signal(signum: int, frame: Any) -> None:
        reason["why"] = "signal"

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not reason["why"]:
            if deadline is not None and time.monotonic() >= deadline:
                reason["why"] = "duration"
            elif should_stop is not None and should_stop():
                reason["why"] = "condition"
            else:
                spin_once(executor, 0.02)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return reason["why"]
