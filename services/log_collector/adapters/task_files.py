"""The task directory side of the collector: data_pipeline.log, and removal of deleted tasks' files
(and of old tasks' files and logs by retention).

The log file is a projection of the log table: each line ends with the row id, and a catch-up appends
every row newer than the file's last id. So a crash between commit and write loses nothing and a
redelivery writes nothing twice.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import asyncpg

from shared.ids import is_valid_task_id
from shared.task_log import log_file_line

LOG_FILE = "data_pipeline.log"
_LAST_ID = re.compile(rb"\(#(\d+)\)\s*$")


def task_dir(data_root: Path, task_id: str) -> Path | None:
    if not is_valid_task_id(task_id):
        return None
    return data_root / task_id


def _last_written_id(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    for line in reversed(tail.splitlines()):
        match = _LAST_ID.search(line)
        if match:
            return int(match.group(1))
    return 0


class TaskLogFiles:
    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self._last: dict[str, int] = {}

    async def catch_up(self, conn: asyncpg.Connection, task_id: str) -> int:
        directory = task_dir(self.data_root, task_id)
        if directory is None:
            return 0
        path = directory / LOG_FILE
        last = self._last.get(task_id)
        if last is None:
            last = _last_written_id(path)
        rows = await conn.fetch(
            "SELECT id, timestamp, log_level, step_name, message FROM data_pipeline_task_logs"
            " WHERE task_id = $1 AND id > $2 ORDER BY id",
            task_id,
            last,
        )
        if rows:
            directory.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.writelines(log_file_line(r) for r in rows)
                fh.flush()
                os.fsync(fh.fileno())
            last = rows[-1]["id"]
        self._last[task_id] = last
        return len(rows)

    def remove_log(self, task_id: str) -> None:
        """Log retention: the file goes with the rows; lines logged later start a new file."""
        self._last.pop(task_id, None)
        directory = task_dir(self.data_root, task_id)
        if directory is not None:
            (directory / LOG_FILE).unlink(missing_ok=True)

    def remove_task(self, task_id: str) -> None:
        self._last.pop(task_id, None)
        directory = task_dir(self.data_root, task_id)
        if directory is not None and directory.resolve().parent == self.data_root.resolve():
            shutil.rmtree(directory, ignore_errors=True)
