"""Run a command in a private network namespace (loopback only, multicast on), so DDS cannot leave it.

The same recipe as the team's `netns-run` script, shipped with the package so tests and CI need nothing
outside the repository: `python -m hardware.netns CMD [ARGS...]`. As root it uses `unshare -n`; otherwise
an unprivileged user namespace (`unshare -rn`) where the kernel allows one.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

_INNER = (
    "ip link set lo up && ip link set lo multicast on && "
    '{ ip route add 224.0.0.0/4 dev lo 2>/dev/null || true; } && exec "$@"'
)


def netns_command(argv: list[str]) -> list[str]:
    """The argv that runs `argv` inside a fresh private network namespace."""
    flags = "-n" if os.geteuid() == 0 else "-rn"
    return ["unshare", flags, "bash", "-c", _INNER, "netns-run", *argv]


@functools.lru_cache(maxsize=1)
def netns_unavailable_reason() -> str | None:
    """None when private network namespaces work here, else why not (for pytest skips)."""
    for tool in ("unshare", "ip", "bash"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed, cannot create a private network namespace"
    try:
        probe = subprocess.run(netns_command(["true"]), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare failed: {error}"
    if probe.returncode != 0:
        return f"unshare is not permitted here: {probe.stderr.strip() or probe.returncode}"
    return None


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python -m hardware.netns CMD [ARGS...]", file=sys.stderr)
        return 2
    os.execvp("unshare", netns_command(sys.argv[1:]))
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
