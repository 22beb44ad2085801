"""The rows one batch of events touches, held in memory while the projector folds the batch.

`load` reads (and locks) every task and execution the batch names in two statements; the handlers read
and change the rows here; `flush` writes each touched row once (inserts and updates pipelined with
`executemany`, log lines by one COPY). Rows the batch does not name are read on first use. A handler
that writes the database itself (`Projector.apply`'s general path) is preceded by a flush and followed
by `forget`, so the memory never hides a write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import bulk_insert
from shared.recorded_channel import CHANNEL_SQL, payloads

Row = dict[str, Any]

TASK_COLUMNS = (
    "id", "task_type", "task_name", "status", "parameters", "result", "error_message", "error_step",
    "progress", "current_step", "step_status", "step_stats", "execution_mode", "single_step", "created_at",
    "started_at", "completed_at", "updated_at", "created_by", "output_directory", "db_name",
    "business_context", "last_event_seq",
)  # fmt: skip
_TASK_MUTABLE = (
    "status", "parameters", "result", "error_message", "error_step", "progress", "current_step",
    "step_status", "step_stats", "execution_mode", "started_at", "completed_at", "updated_at",
    "last_event_seq",
)  # fmt: skip
EXECUTION_COLUMNS = (
    "id", "task_id", "execution_step", "status", "started_at", "completed_at", "error_message",
    "execution_result", "execution_id", "force_executed", "attempt", "runner_id", "progress",
    "scheduled_at", "last_heartbeat_at",
)  # fmt: skip
_EXECUTION_MUTABLE = (
    "status", "started_at", "completed_at", "error_message", "execution_result", "runner_id", "progress",
    "last_heartbeat_at",
)  # fmt: skip
LOG_COLUMNS = (
    "id", "task_id", "execution_id", "log_level", "message", "step_name", "module_name", "function_name",
    "timestamp", "extra_data", "event_id", "level_no",
)  # fmt: skip
_LOG_TYPES = (
    "bigint", "varchar", "varchar", "varchar", "text", "varchar", "varchar", "varchar", "timestamptz",
    "jsonb", "uuid", "smallint",
)  # fmt: skip
_LOG_COLUMN_TYPES = tuple(zip(LOG_COLUMNS, _LOG_TYPES, strict=True))
_DURATION = "CASE WHEN {c} IS NULL OR {s} IS NULL THEN NULL ELSE GREATEST(0, EXTRACT(EPOCH FROM ({c} - {s})))::int END"


def utc(at: datetime) -> datetime:
    """Timestamps kept in memory as the database returns them (UTC), so a row reads the same either way."""
    return at.astimezone(UTC)


def _insert(table: str, columns: tuple[str, ...], conflict: str, extra: str = "", values: str = "") -> str:
    params = ", ".join(f"${i + 1}" for i in range(len(columns)))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}{extra}) VALUES ({params}{values})"
        f" ON CONFLICT ({conflict}) DO NOTHING"
    )


def _update(table: str, key: str, columns: tuple[str, ...], extra: str = "") -> str:
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    return f"UPDATE {table} SET {sets}{extra} WHERE {key} = $1"


_INSERT_TASK = _insert("data_pipeline_tasks", TASK_COLUMNS, "id")
_UPDATE_TASK = _update("data_pipeline_tasks", "id", _TASK_MUTABLE)
# Names the new tasks, and those whose status changed, to the gateways waiting on them; delivered at
# commit, once the rows are visible.
_NOTIFY_RECORDED = f"SELECT pg_notify({CHANNEL_SQL}, p) FROM unnest($1::text[]) AS p"
_INSERT_EXECUTION = _insert(
    "data_pipeline_task_executions",
    EXECUTION_COLUMNS,
    "execution_id",
    ", duration_seconds",
    ", "
    + _DURATION.format(c=f"${EXECUTION_COLUMNS.index('completed_at') + 1}::timestamptz", s="$5::timestamptz"),
)
_UPDATE_EXECUTION = _update(
    "data_pipeline_task_executions",
    "execution_id",
    _EXECUTION_MUTABLE,
    ", duration_seconds = " + _DURATION.format(c="$4::timestamptz", s="$3::timestamptz"),
)
_UPSERT_OUTPUT = """
INSERT INTO data_pipeline_task_outputs (task_id, execution_id, file_type, file_name, file_path, file_size,
    content_hash, description, created_at, modified_at, is_primary, step_name, id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz, $9::timestamptz, $10, $11, $12)
ON CONFLICT (task_id, file_path) DO UPDATE SET
    execution_id = EXCLUDED.execution_id, file_type = EXCLUDED.file_type,
    file_name = EXCLUDED.file_name, file_size = EXCLUDED.file_size,
    content_hash = EXCLUDED.content_hash, description = EXCLUDED.description,
    modified_at = EXCLUDED.modified_at, is_primary = EXCLUDED.is_primary,
    step_name = EXCLUDED.step_name
"""


@dataclass(frozen=True)
class LaterReport:
    """A task's `result` to be made at the flush: its final report through the event at `seq`."""

    seq: int


Reports = Callable[[asyncpg.Connection, dict[str, int]], Awaitable[dict[str, Any]]]


class UnitOfWork:
    def __init__(self, conn: asyncpg.Connection, reports: Reports) -> None:
        self.conn = conn
        self._reports = reports
        self._tasks: dict[str, Row | None] = {}
        self._executions: dict[str, Row | None] = {}
        self._new_tasks: set[str] = set()
        self._dirty_tasks: set[str] = set()
        self._moved_tasks: set[str] = set()  # a status changed
        self._new_executions: set[str] = set()
        self._dirty_executions: set[str] = set()
        self._logs: list[tuple[Any, ...]] = []
        self._outputs: list[tuple[Any, ...]] = []
        self.written_logs: list[tuple[Any, ...]] = []  # every log row flushed (LOG_COLUMNS), for the files

    # ---- reading ---------------------------------------------------------------------------------

    async def load(self, task_ids: Iterable[str], execution_ids: Iterable[str]) -> None:
        """Read (FOR UPDATE, in id order) the rows not in memory yet; absent ones are remembered as None."""
        tasks = sorted(set(task_ids) - self._tasks.keys())
        if tasks:
            rows = await self.conn.fetch(
                f"SELECT {', '.join(TASK_COLUMNS)} FROM data_pipeline_tasks WHERE id = ANY($1::varchar[])"
                " ORDER BY id FOR UPDATE",
                tasks,
            )
            self._tasks.update(dict.fromkeys(tasks))
            self._tasks.update((r["id"], dict(r)) for r in rows)
        executions = sorted(set(execution_ids) - self._executions.keys())
        if executions:
            rows = await self.conn.fetch(
                f"SELECT {', '.join(EXECUTION_COLUMNS)} FROM data_pipeline_task_executions"
                " WHERE execution_id = ANY($1::varchar[]) ORDER BY execution_id FOR UPDATE",
                executions,
            )
            self._executions.update(dict.fromkeys(executions))
            self._executions.update((r["execution_id"], dict(r)) for r in rows)

    async def task(self, task_id: str) -> Row | None:
        if task_id not in self._tasks:
            await self.load([task_id], ())
        return self._tasks[task_id]

    async def execution(self, execution_id: str | None) -> Row | None:
        if not execution_id:
            return None
        if execution_id not in self._executions:
            await self.load((), [execution_id])
        return self._executions[execution_id]

    # ---- changing --------------------------------------------------------------------------------

    def create_task(self, row: Row) -> None:
        self._tasks[row["id"]] = {c: row.get(c) for c in TASK_COLUMNS}
        self._new_tasks.add(row["id"])

    def update_task(self, task_id: str, fields: Row) -> None:
        row = self._tasks.get(task_id)
        if row is None:
            return
        if "status" in fields and fields["status"] != row["status"]:
            self._moved_tasks.add(task_id)
        row.update(fields)
        self._dirty_tasks.add(task_id)

    def create_execution(self, row: Row) -> None:
        self._executions[row["execution_id"]] = {c: row.get(c) for c in EXECUTION_COLUMNS}
        self._new_executions.add(row["execution_id"])

    def update_execution(self, execution_id: str, fields: Row) -> None:
        row = self._executions.get(execution_id)
        if row is None:
            return
        row.update(fields)
        self._dirty_executions.add(execution_id)

    def add_log(self, row: Row) -> None:
        self._logs.append(tuple(row[c] for c in LOG_COLUMNS))

    def add_output(self, args: tuple[Any, ...]) -> None:
        self._outputs.append(args)

    def forget(self, task_id: str) -> None:
        """Drop a task's rows from memory (after a handler changed them in the database)."""
        self._tasks.pop(task_id, None)
        for execution_id, row in list(self._executions.items()):
            if row is None or row["task_id"] == task_id:
                del self._executions[execution_id]

    def clear(self) -> None:
        self._tasks.clear()
        self._executions.clear()
        self.written_logs.clear()

    # ---- writing ---------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every row changed since the last flush, parents first."""
        conn = self.conn
        later = {
            task_id: row["result"].seq
            for task_id in self._dirty_tasks | self._new_tasks
            if (row := self._tasks.get(task_id)) is not None and isinstance(row["result"], LaterReport)
        }
        if later:
            for task_id, report in (await self._reports(conn, later)).items():
                self.update_task(task_id, {"result": report})
        new_tasks = [self._tasks[t] for t in sorted(self._new_tasks)]
        if new_tasks:
            await conn.executemany(_INSERT_TASK, [tuple(r[c] for c in TASK_COLUMNS) for r in new_tasks if r])
        updated = [self._tasks[t] for t in sorted(self._dirty_tasks - self._new_tasks)]
        if updated:
            await conn.executemany(
                _UPDATE_TASK, [(r["id"], *(r[c] for c in _TASK_MUTABLE)) for r in updated if r]
            )
        new_executions = [self._executions[e] for e in sorted(self._new_executions)]
        if new_executions:
            await conn.executemany(
                _INSERT_EXECUTION, [tuple(r[c] for c in EXECUTION_COLUMNS) for r in new_executions if r]
            )
        changed = [self._executions[e] for e in sorted(self._dirty_executions - self._new_executions)]
        if changed:
            await conn.executemany(
                _UPDATE_EXECUTION,
                [(r["execution_id"], *(r[c] for c in _EXECUTION_MUTABLE)) for r in changed if r],
            )
        if self._outputs:
            await conn.executemany(_UPSERT_OUTPUT, self._outputs)
        if self._new_tasks or self._moved_tasks:
            await conn.execute(_NOTIFY_RECORDED, payloads(sorted(self._new_tasks | self._moved_tasks)))
        await bulk_insert.write_rows(conn, "data_pipeline_task_logs", _LOG_COLUMN_TYPES, self._logs)
        self._new_tasks.clear()
        self._dirty_tasks.clear()
        self._moved_tasks.clear()
        self._new_executions.clear()
        self._dirty_executions.clear()
        self.written_logs += self._logs
        self._logs.clear()
        self._outputs.clear()
