"""Page-numbered queries over the read models, for the earlier implementation's POST /tasks/query and
POST /tasks/{id}/logs/query. The keyset pages of read_models stay the recommended way; these pages are
bounded (schemas/earlier.py caps page and page size), so an offset never scans without end.
POST /tasks/query keeps an exact total: its clients compute `total_pages` from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.api_gateway.adapters.keyset import Where, count_capped
from services.api_gateway.adapters.read_models import (
    _TASK_COLUMNS,
    LogFilters,
    TaskFilters,
    _log_where,
    _task_where,
    like_pattern,
)

# Sort keys a client may name, mapped to SQL (a fixed set: never text from the request).
TASK_SORT_COLUMNS = {
    "created_at": "created_at",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "updated_at": "updated_at",
    "task_name": "task_name",
    "status": "status",
}


@dataclass(frozen=True)
class TaskQuery:
    filters: TaskFilters
    task_name: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


async def query_tasks(
    pool: asyncpg.Pool, query: TaskQuery, *, sort_by: str, descending: bool, offset: int, limit: int
) -> tuple[list[asyncpg.Record], int]:
    """One page of tasks and the number matching; ties are broken by creation time and id."""
    where = _task_where(query.filters)
    if query.task_name:
        where.add("coalesce(task_name, '') ILIKE {} ESCAPE '\\'", like_pattern(query.task_name))
    if query.created_from:
        where.add("created_at >= {}", query.created_from)
    if query.created_to:
        where.add("created_at <= {}", query.created_to)
    total = await pool.fetchval(f"SELECT count(*) FROM data_pipeline_tasks{where.sql()}", *where.args)
    direction = "DESC" if descending else "ASC"
    column = TASK_SORT_COLUMNS[sort_by]
    args = [*where.args, limit, offset]
    rows = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks{where.sql()}"
        f" ORDER BY {column} {direction} NULLS LAST, created_at {direction}, id {direction}"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    return list(rows), int(total)


@dataclass(frozen=True)
class LogQuery:
    filters: LogFilters
    level: str | None = None  # exactly this level
    logger: str | None = None  # text in the module name


def _where(task_id: str, query: LogQuery) -> Where:
    where = _log_where(task_id, query.filters)
    if query.level:
        where.add("log_level = {}", query.level)
    if query.logger:
        where.add("coalesce(module_name, '') ILIKE {} ESCAPE '\\'", like_pattern(query.logger))
    return where


async def query_logs(
    pool: asyncpg.Pool, task_id: str, query: LogQuery, *, descending: bool, offset: int, limit: int
) -> list[asyncpg.Record]:
    """One page of log lines in time order (log id order), oldest or newest first."""
    where = _where(task_id, query)
    args = [*where.args, limit, offset]
    return list(
        await pool.fetch(
            f"""SELECT id, event_id, task_id, execution_id, log_level, message, step_name, module_name,
                       function_name, timestamp, extra_data
                FROM data_pipeline_task_logs{where.sql()}
                ORDER BY id {"DESC" if descending else "ASC"} LIMIT ${len(args) - 1} OFFSET ${len(args)}""",
            *args,
        )
    )


async def count_logs(pool: asyncpg.Pool, task_id: str, query: LogQuery, *, cap: int) -> tuple[int, bool]:
    """(lines matching, exact), counting at most `cap` matches (as read_models.count_logs)."""
    where = _where(task_id, query)
    return await count_capped(pool, f"FROM data_pipeline_task_logs{where.sql()}", where.args, cap)
