"""Files in the task directory: written atomically, so a runner killed mid-write leaves the old file or
the new one, never half of one; and named only by bare file names the step chose or validated."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class UnsafeFileName(ValueError):
    """A file name from a request points outside the task directory or is not a plain name."""


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
