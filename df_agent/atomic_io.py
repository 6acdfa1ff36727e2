"""Atomic file writes: results, reports and figures appear whole or not at all.

Every writer goes through a temporary file in the destination's folder (same filesystem, so `os.replace` is
atomic) that is renamed over the destination only once it is complete. A writer that fails (a value JSON
cannot encode, a full disk, Ctrl-C) leaves the earlier file untouched and no temporary file behind. The
temporary names are unique per call, so two processes writing the same path cannot clobber each other's
half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _default_file_mode() -> int:
    # mkstemp creates files 0600; results and package data should get the permissions a plain open() would.
    # Linux reports the umask in /proc without changing it (os.umask would, briefly, for every thread).
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so format-sniffing writers such as matplotlib's
    savefig or OpenCV's VideoWriter pick the right format); on a clean exit it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():  # a writer that replaced the file by a rename of its own and then removed it
            raise OSError(f"writing {path} left no file at {tmp}")
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(
    path: str | os.PathLike, data: Any, *, sort_keys: bool = False, allow_nan: bool = True, fsync: bool = False
) -> Path:
    """Write `data` as indented JSON to `path` atomically. The JSON text is built before any file is touched, so
    data that cannot be encoded raises with `path` named and the old file intact."""
    try:
        text = json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=allow_nan)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot write {path}: the data is not JSON-serialisable ({error})") from error
    return write_text_atomic(path, text + "\n", fsync=fsync)
