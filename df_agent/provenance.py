"""What produced a results file: `provenance(argv)` -> package version, git commit, command line, timestamp.

Every results JSON the `df-agent` commands and the benchmarks write carries it under `produced_by`, so a file
found later says which code and which command made it.
"""

from __future__ import annotations

import datetime
import shlex
import subprocess
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from df_agent import __version__

PROVENANCE_KEY = "produced_by"


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """argv: the command line (default: this process's sys.argv)."""
    command = list(sys.argv if argv is None else argv)
    commit, dirty = git_state()
    return {
        "package": "df-agent",
        "version": __version__,
        "git_commit": commit,  # None when the code does not run from a git checkout
        "git_dirty": dirty,  # tracked files differ from the commit (None: unknown)
        "command": shlex.join(command),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
    }


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the package runs from, or (None, None) without git or a checkout."""
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def with_provenance(data: dict[str, Any], argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`data` with its `produced_by` record added (kept if it has one already)."""
    return {**data, PROVENANCE_KEY: data.get(PROVENANCE_KEY) or provenance(argv)}


def command_of(args: Any) -> list[str] | None:
    """The command line `df-agent` main recorded on its parsed arguments (None: use sys.argv)."""
    return getattr(args, "command_line", None)
