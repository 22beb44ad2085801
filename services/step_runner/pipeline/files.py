"""Files in the task directory: written atomically, so a runner killed mid-write leaves the old file or
the new one, never half of one; and named only by bare file names the step chose or validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.atomic_files import atomic_write_text as atomic_write_text  # the steps' writer, re-exported


class UnsafeFileName(ValueError):
    """A file name from a request points outside the task directory or is not a plain name."""


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def bare_file_name(name: str) -> str:
    """`name` when it is a plain file name (no directory part, no `..`, no NUL)."""
    if (
        not name
        or name in {".", ".."}
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
    ):
        raise UnsafeFileName(f"not a plain file name: {name[:80]!r}")
    return name
