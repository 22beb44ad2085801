"""Queries over the read models the log collector maintains. The gateway only reads these tables.

A task the gateway accepted (202) but the read model does not show yet is found in the gateway's own
intake journal (adapters/accepted.py): `get_task`, `task_status` and `existing_task_ids` see it as
`pending`, so it is addressable at once.

Every connection's search_path is the configured pipeline schema (shared.db), so table names are bare.
Pagination is keyset everywhere: (created_at, id) for tasks, id for log lines, seq for events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.api_gateway.adapters import accepted
from shared import event_store, vocabulary

RUNNING_STATUSES = ("pending", "in_progress")
LEVEL_NUMBERS = vocabulary.LEVEL_NUMBERS
TERMINAL_STATUSES = vocabulary.TASK_TERMINAL

_TASK_COLUMNS = """
    id, task_type, task_name, status, parameters, result, error_message, error_step, progress,
    current_step, step_status, step_stats, execution_mode, single_step, created_at, started_at,
    completed_at, updated_at, created_by, output_directory, db_name, business_context
"""


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` escaped, so a search for `50%_off` means exactly that."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class _Where:
    """Builds a WHERE clause with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        numbers = [f"${len(self.args) + i + 1}" for i in range(len(values))]
        self.clauses.append(template.format(*numbers))
        self.args.extend(values)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


async def ping(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT 1") == 1


async def get_task(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record | dict[str, Any] | None:
    """The task's row, else the `pending` view of an accepted, not yet recorded task, else None."""
    row = await pool.fetchrow(f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks WHERE id = $1", task_id)
    if row is not None:
        return row
    return await accepted.unrecorded(pool, task_id)


async def task_status(pool: asyncpg.Pool, task_id: str) -> str | None:
    """The task's status; `pending` for an accepted, not yet recorded task; None: no such task."""
    status: str | None = await pool.fetchval(
        "SELECT coalesce((SELECT status FROM data_pipeline_tasks WHERE id = $1),"
        f" (SELECT 'pending' FROM accepted_commands a WHERE a.task_id = $1 AND {accepted.NOT_RECORDED}))",
        task_id,
    )
    return status


async def existing_task_ids(pool: asyncpg.Pool, task_ids: Sequence[str]) -> set[str]:
    """The ids that name a task (recorded, or accepted and not yet recorded)."""
    rows = await pool.fetch("SELECT id FROM data_pipeline_tasks WHERE id = ANY($1::text[])", list(task_ids))
    return {r["id"] for r in rows} | await accepted.unrecorded_ids(pool, list(task_ids))


async def has_events(pool: asyncpg.Pool, task_id: str) -> bool:
    return await event_store.has_events(pool, task_id)


@dataclass(frozen=True)
class TaskFilters:
    status: str | None = None
    created_by: str | None = None
    db_name: str | None = None
    search: str | None = None


def _task_where(filters: TaskFilters) -> _Where:
    where = _Where()
    if filters.status:
        where.add("status = ANY({}::text[])", filters.status.split(","))
    if filters.created_by:
        where.add("created_by = {}", filters.created_by)
    if filters.db_name:
        where.add("db_name = {}", filters.db_name)
    if filters.search:
        where.add(
            "(coalesce(task_name, '') ILIKE {0} ESCAPE '\\' OR coalesce(business_context, '') ILIKE {0} ESCAPE '\\')",
            like_pattern(filters.search),
        )
    return where


async def list_tasks(
    pool: asyncpg.Pool,
    filters: TaskFilters,
    *,
    before: tuple[datetime, str] | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[asyncpg.Record], int]:
    """Newest first; `limit + 1` rows are fetched so the caller knows whether there is a next page.
    `offset` skips rows (the earlier implementation's paging); `before` is the keyset position."""
    where = _task_where(filters)
    count_sql = f"SELECT count(*) FROM data_pipeline_tasks{where.sql()}"
    total = await pool.fetchval(count_sql, *where.args)
    if before is not None:
        where.add("(created_at, id) < ({}, {})", before[0], before[1])
    where_args = [*where.args, limit + 1, offset]
    rows = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks{where.sql()}"
        f" ORDER BY created_at DESC, id DESC LIMIT ${len(where_args) - 1} OFFSET ${len(where_args)}",
        *where_args,
    )
    return list(rows), int(total)


async def active_tasks(pool: asyncpg.Pool) -> tuple[list[asyncpg.Record], bool]:
    """The tasks running now (oldest first); else the most recent task, flagged as not active."""
    rows = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks WHERE status = 'in_progress' ORDER BY started_at NULLS LAST, created_at"
    )
    if rows:
        return list(rows), True
    latest = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    return list(latest), False


async def executions(pool: asyncpg.Pool, task_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            """SELECT execution_id, execution_step, status, started_at, completed_at, error_message,
                      execution_result, force_executed, duration_seconds, attempt, runner_id, progress,
                      scheduled_at, files_cleaned
               FROM data_pipeline_task_executions WHERE task_id = $1
               ORDER BY coalesce(started_at, scheduled_at) NULLS LAST, id""",
            task_id,
        )
    )


@dataclass(frozen=True)
class LogFilters:
    min_level: int | None = None
    step: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _log_where(task_id: str, filters: LogFilters) -> _Where:
    where = _Where()
    where.add("task_id = {}", task_id)
    if filters.min_level is not None:
        where.add("level_no >= {}", filters.min_level)
    if filters.step:
        where.add("step_name = {}", filters.step)
    if filters.text:
        where.add("message ILIKE {} ESCAPE '\\'", like_pattern(filters.text))
    if filters.since:
        where.add("timestamp >= {}", filters.since)
    if filters.until:
        where.add("timestamp <= {}", filters.until)
    return where


async def logs(
    pool: asyncpg.Pool,
    task_id: str,
    filters: LogFilters,
    *,
    after_id: int | None,
    limit: int,
    descending: bool = False,
) -> list[asyncpg.Record]:
    """Log lines past the cursor (`id > after_id`, or `<` when descending); `limit + 1` rows."""
    where = _log_where(task_id, filters)
    if after_id is not None:
        where.add("id < {}" if descending else "id > {}", after_id)
    args = [*where.args, limit + 1]
    return list(
        await pool.fetch(
            f"""SELECT id, event_id, task_id, execution_id, log_level, message, step_name, module_name,
                       function_name, timestamp, extra_data
                FROM data_pipeline_task_logs{where.sql()}
                ORDER BY id {"DESC" if descending else "ASC"} LIMIT ${len(args)}""",
            *args,
        )
    )


async def count_logs(pool: asyncpg.Pool, task_id: str, filters: LogFilters, *, cap: int) -> tuple[int, bool]:
    """(lines matching, exact): counting stops after `cap` matches, so its cost is bounded; past the cap
    the count is `cap` and not exact."""
    where = _log_where(task_id, filters)
    args = [*where.args, cap + 1]
    found = int(
        await pool.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM data_pipeline_task_logs{where.sql()} LIMIT ${len(args)}) s",
            *args,
        )
    )
    return min(found, cap), found <= cap


async def events(
    pool: asyncpg.Pool, task_id: str, *, after_seq: int | None, limit: int, types: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The task's event history page from the event store (payloads in their current shape)."""
    return await event_store.event_page(pool, task_id, after_seq=after_seq, limit=limit, types=types)


async def outputs(pool: asyncpg.Pool, task_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            """SELECT file_name, file_type, file_path, file_size, content_hash, description, created_at,
                      modified_at, is_primary, is_downloadable, step_name, execution_id
               FROM data_pipeline_task_outputs WHERE task_id = $1
               ORDER BY is_primary DESC, created_at, file_name""",
            task_id,
        )
    )


async def output_downloadable(pool: asyncpg.Pool, task_id: str, file_name: str) -> bool | None:
    """Whether a registered file may be downloaded; None when the file is not registered."""
    return await pool.fetchval(
        "SELECT bool_and(is_downloadable) FROM data_pipeline_task_outputs WHERE task_id = $1 AND file_name = $2",
        task_id,
        file_name,
    )
