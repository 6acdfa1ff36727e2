"""Atomic writes: the destination is either the old file or the complete new one, never a partial file."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from df_agent.atomic_io import atomic_path, write_json_atomic, write_text_atomic


def leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_json_round_trip_creates_parents_and_ordinary_permissions(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "results.json"
    old_umask = os.umask(0o022)
    try:
        write_json_atomic(target, {"score": 1.5, "z": [1, 2], "a": None}, sort_keys=True)
    finally:
        os.umask(old_umask)
    assert json.loads(target.read_text()) == {"score": 1.5, "z": [1, 2], "a": None}
    assert target.read_text().index('"a"') < target.read_text().index('"z"')  # sort_keys honoured
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert leftovers(target.parent, "results.json") == []


def test_unencodable_data_keeps_the_old_file_and_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"score": 1.0})
    with pytest.raises(ValueError, match=r"results\.json"):
        write_json_atomic(target, {"score": object()})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        write_json_atomic(target, {"score": math.nan}, allow_nan=False)
    assert json.loads(target.read_text()) == {"score": 1.0}
    assert leftovers(tmp_path, "results.json") == []


def test_writer_failing_midway_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    target.write_bytes(b"old figure")

    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"  # format-sniffing writers see the right suffix
        tmp.write_bytes(b"half a fig")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old figure"
    assert leftovers(tmp_path, "figure.png") == []


def test_text_write_replaces_and_fsync_path_works(tmp_path: Path) -> None:
    target = tmp_path / "table.md"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second\n", fsync=True)
    assert target.read_text() == "second\n"
    assert leftovers(tmp_path, "table.md") == []


def test_writer_that_removes_its_output_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(OSError, match="left no file"), atomic_path(target) as tmp:
        tmp.unlink()
    assert not target.exists()
