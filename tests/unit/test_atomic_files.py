"""The one atomic file writer (step outputs, gateway table lists)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared.atomic_files import atomic_write_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_whole_files_with_the_asked_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "a\nb\n")
    assert target.read_text() == "a\nb\n" and _mode(target) == 0o644
    atomic_write_text(target, "private\n", mode=None)
    assert target.read_text() == "private\n" and _mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "bad \udc80 surrogate")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
