"""Writing a file atomically: readers (and a process killed mid-write) see the old file or the new one,
never half of one. The step runner's outputs and the gateway's table lists both go through here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str, *, mode: int | None = 0o644) -> None:
    """Write `text` (UTF-8, `\\n` line ends) to `path` via a synced temporary file and a rename.

    The temporary file is `.{name}.<random>.tmp` beside the target and is removed on any failure.
    `mode` sets the permissions; None keeps the temporary file's owner-only 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
