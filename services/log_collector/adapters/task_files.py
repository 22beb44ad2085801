"""The task directory side of the collector: data_pipeline.log, and removal of deleted tasks' files
(and of old tasks' files and logs by retention).

The log file is a projection of the log table: each line ends with the row id, and a catch-up appends
every row newer than the file's last id. So a crash between commit and write loses nothing and a
redelivery writes nothing twice.

After each commit the batch's new lines are appended from memory (`append`) when the file is known to
end with the task's previous row (this process wrote it, nobody has written since); otherwise the task
catches up from the table. Appends are not fsynced one by one: `sync` fsyncs the files written since
the last sync; the collector runs it in a thread about once a second (docs/decisions.md, "Collector":
what a machine crash can lose and how it comes back).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from shared.ids import is_valid_task_id
from shared.task_log import log_file_line

LOG_FILE = "data_pipeline.log"
_LAST_ID = re.compile(rb"\(#(\d+)\)\s*$")


def task_dir(data_root: Path, task_id: str) -> Path | None:
    if not is_valid_task_id(task_id):
        return None
    return data_root / task_id


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


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
        self._size: dict[str, int | None] = {}  # the file's size after this process last wrote it
        self._unsynced: set[Path] = set()
        self._unsynced_lock = threading.Lock()  # `sync` runs in a thread while the loop writes

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
            self._write(task_id, path, rows)
        else:
            self._size[task_id] = _size(path)
        self._last[task_id] = last if not rows else rows[-1]["id"]
        return len(rows)

    def append(self, task_id: str, rows: list[dict[str, Any]], before: int | None) -> bool:
        """Append the rows one commit added for the task, whose previous row is `before` (None: none);
        False when the file may not end with that row (the caller catches up from the table instead)."""
        directory = task_dir(self.data_root, task_id)
        if directory is None:
            return True
        path = directory / LOG_FILE
        size = _size(path)
        if task_id not in self._last and before is None and size is None:  # a new task's first lines
            self._last[task_id], self._size[task_id] = 0, None
        if self._last.get(task_id) != (before or 0) or self._size.get(task_id) != size:
            return False
        self._write(task_id, path, rows)
        self._last[task_id] = rows[-1]["id"]
        return True

    def append_all(
        self, lines: Mapping[str, list[dict[str, Any]]], before: Mapping[str, int | None]
    ) -> set[str]:
        """`append` for each task of `lines` (`before`: each task's previous row); the tasks written."""
        return {task_id for task_id, rows in lines.items() if self.append(task_id, rows, before[task_id])}

    def _write(self, task_id: str, path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
        if self._size.get(task_id) is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.writelines(log_file_line(r) for r in rows)
            self._size[task_id] = fh.tell()
        with self._unsynced_lock:
            self._unsynced.add(path)

    def sync(self) -> None:
        """fsync the files written since the last sync (safe to run in a thread beside the writes: a file
        written meanwhile is synced by the next call)."""
        with self._unsynced_lock:
            paths, self._unsynced = self._unsynced, set()
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def remove_log(self, task_id: str) -> None:
        """Log retention: the file goes with the rows; lines logged later start a new file."""
        self._last.pop(task_id, None)
        self._size.pop(task_id, None)
        directory = task_dir(self.data_root, task_id)
        if directory is not None:
            (directory / LOG_FILE).unlink(missing_ok=True)

    def remove_task(self, task_id: str) -> None:
        self._last.pop(task_id, None)
        self._size.pop(task_id, None)
        directory = task_dir(self.data_root, task_id)
        if directory is not None and directory.resolve().parent == self.data_root.resolve():
            shutil.rmtree(directory, ignore_errors=True)
