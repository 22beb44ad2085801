"""Queries over the read models the log collector maintains. The gateway only reads these tables.

A task the gateway accepted (202) but the read model does not show yet is found in the gateway's own
intake journal (adapters/accepted.py): `get_task`, `task_status` and `existing_task_ids` see it as
`pending`, so it is addressable at once.

Every connection's search_path is the configured pipeline schema (shared.db), so table names are bare.
Pagination is keyset everywhere: (created_at, id) for tasks, id for log lines, seq for events.

Each page costs the same on a task of 10k log lines as on one of 1M, and on 1k tasks as on 100k
(issue 11, goal 3; bench/bench_reads.py measures it): every filter is served by an index in page order
(migration 0005), a filter on several values (levels, statuses) is read as one ordered branch per value
merged by the database, and totals are counted up to a cap (`total_exact` false past it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.api_gateway.adapters import accepted
from services.api_gateway.adapters.keyset import (
    Connection,
    Queryable,
    Where,
    count_capped,
    count_text,
    custom_plans,
    ordered_branches,
    set_page,
    text_page,
)
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


# What the task list's search looks in: id, name, database and business context, one per line (a search
# text holds no line break, so a match never spans two fields). The trigram index of migration 0005
# is on exactly this expression; a different spelling here would not use it.
TASK_SEARCH_TEXT = (
    "(id || chr(10) || coalesce(task_name, '') || chr(10) || coalesce(db_name, '')"
    " || chr(10) || coalesce(business_context, ''))"
)
LEVELS: tuple[int, ...] = tuple(sorted(LEVEL_NUMBERS.values()))


async def ping(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT 1") == 1


async def get_task(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record | dict[str, Any] | None:
    """The task's row, else the `pending` view of an accepted, not yet recorded task, else None.

    A task the collector records between the two reads is in neither (the journal's view excludes a
    recorded task): then the row is read once more, so a task answered 202 never reads as missing."""
    query = f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks WHERE id = $1"
    row = await pool.fetchrow(query, task_id)
    if row is not None:
        return row
    pending = await accepted.unrecorded(pool, task_id)
    if pending is not None:
        return pending
    return await pool.fetchrow(query, task_id)


async def task_status(pool: asyncpg.Pool, task_id: str) -> str | None:
    """The task's status; `pending` for an accepted, not yet recorded task; None: no such task."""
    status: str | None = await pool.fetchval(
        "SELECT coalesce((SELECT status FROM data_pipeline_tasks WHERE id = $1),"
        f" (SELECT 'pending' FROM accepted_commands a WHERE a.task_id = $1 AND {accepted.NOT_RECORDED}))",
        task_id,
    )
    return status


async def existing_task_ids(pool: asyncpg.Pool, task_ids: Sequence[str]) -> set[str]:
    """The ids that name a task (recorded, or accepted and not yet recorded), in one statement: two reads
    would miss a task the collector records between them."""
    rows = await pool.fetch(
        "SELECT id FROM data_pipeline_tasks WHERE id = ANY($1::text[]) UNION SELECT task_id"
        f" FROM accepted_commands a WHERE a.task_id = ANY($1::text[]) AND {accepted.NOT_RECORDED}",
        list(task_ids),
    )
    return {r["id"] for r in rows}


async def has_events(pool: asyncpg.Pool, task_id: str) -> bool:
    return await event_store.has_events(pool, task_id)


@dataclass(frozen=True)
class TaskFilters:
    status: str | None = None
    created_by: str | None = None
    db_name: str | None = None
    search: str | tuple[str, ...] | None = None  # several texts: a task contains each

    @property
    def statuses(self) -> list[str]:
        return self.status.split(",") if self.status else []


def _task_where(filters: TaskFilters, *, with_status: bool = True, with_search: bool = True) -> Where:
    where = Where()
    if filters.status and with_status:
        where.add("status = ANY({}::text[])", filters.statuses)
    if filters.created_by:
        where.add("created_by = {}", filters.created_by)
    if filters.db_name:
        where.add("db_name = {}", filters.db_name)
    if with_search:
        for text in [filters.search] if isinstance(filters.search, str) else filters.search or ():
            where.add(f"{TASK_SEARCH_TEXT} ILIKE {{}}", like_pattern(text))
    return where


_TASK_ORDER = "created_at DESC, id DESC"


async def list_tasks(
    pool: asyncpg.Pool,
    filters: TaskFilters,
    *,
    before: tuple[datetime, str] | None,
    limit: int,
    offset: int = 0,
    count_cap: int,
) -> tuple[list[asyncpg.Record], int, bool]:
    """Newest first; `limit + 1` rows are fetched so the caller knows whether there is a next page.
    `offset` skips rows (the earlier implementation's paging); `before` is the keyset position.
    Returns (rows, total, exact): the total is counted up to `count_cap` (exact below it)."""
    async with pool.acquire() as conn:
        if not filters.search:
            return await _counted_task_page(conn, filters, before, limit + 1 + offset, offset, count_cap)
        async with conn.transaction(readonly=True):
            await custom_plans(conn)
            return await _counted_task_page(conn, filters, before, limit + 1 + offset, offset, count_cap)


async def _counted_task_page(
    conn: Connection,
    filters: TaskFilters,
    before: tuple[datetime, str] | None,
    limit: int,
    offset: int,
    count_cap: int,
) -> tuple[list[asyncpg.Record], int, bool]:
    where = _task_where(filters)
    total, exact = await count_capped(conn, f"FROM data_pipeline_tasks{where.sql()}", where.args, count_cap)
    rows = await _task_page(conn, filters, before, limit, few=exact)
    return rows[offset:], total, exact


async def _task_page(
    conn: Connection, filters: TaskFilters, before: tuple[datetime, str] | None, limit: int, *, few: bool
) -> list[asyncpg.Record]:
    """`few`: at most the count's cap of tasks match (a search then reads them as a set)."""
    select = f"SELECT {_TASK_COLUMNS} FROM data_pipeline_tasks"
    statuses = filters.statuses
    where = _task_where(filters, with_status=len(statuses) < 2)
    if before is not None:
        where.add("(created_at, id) < ({}, {})", before[0], before[1])
    if filters.search:
        scope = Where()
        if before is not None:
            scope.add("(created_at, id) < ({}, {})", before[0], before[1])
        if len(statuses) > 1:
            where.add("status = ANY({}::text[])", statuses)
        if few:
            return await set_page(
                conn,
                table="data_pipeline_tasks",
                columns=_TASK_COLUMNS,
                keys=("created_at", "id"),
                descending=True,
                matching=where,
                limit=limit,
            )
        return await text_page(
            conn,
            table="data_pipeline_tasks",
            columns=_TASK_COLUMNS,
            keys=("created_at", "id"),
            descending=True,
            scope=scope,
            matching=where,
            limit=limit,
        )
    if len(statuses) > 1:
        # One branch per status, each newest first in (status, created_at, id); the page is merged.
        branches = []
        for status in statuses:
            where.args.append(status)
            branches.append(f"status = ${len(where.args)}")
        sql = ordered_branches(select, where, branches, _TASK_ORDER, str(int(limit)))
        return list(await conn.fetch(sql, *where.args))
    return list(
        await conn.fetch(f"{select}{where.sql()} ORDER BY {_TASK_ORDER} LIMIT {int(limit)}", *where.args)
    )


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


def _log_where(task_id: str, filters: LogFilters, *, with_level: bool = True) -> Where:
    where = Where()
    where.add("task_id = {}", task_id)
    if filters.min_level is not None and with_level:
        where.add("level_no >= {}", filters.min_level)
    if filters.step:
        where.add("step_name = {}", filters.step)
    if filters.text:
        where.add("message ILIKE {}", like_pattern(filters.text))
    if filters.since:
        where.add("timestamp >= {}", filters.since)
    if filters.until:
        where.add("timestamp <= {}", filters.until)
    return where


_LOG_COLUMNS = """id, event_id, task_id, execution_id, log_level, message, step_name, module_name,
                  function_name, timestamp, extra_data"""


def _level_branches(filters: LogFilters) -> list[str] | None:
    """A level filter, or a step filter (its index continues with the level), is read one level at a
    time: (task_id, level_no, id) and (task_id, step_name, level_no, id) give each level's lines in id
    order (migration 0005 holds level_no to these five values)."""
    if filters.min_level is not None:
        return [f"level_no = {n}" for n in LEVELS if n >= filters.min_level]
    if filters.step:
        return [f"level_no = {n}" for n in LEVELS]
    return None


async def logs(
    pool: Queryable,
    task_id: str,
    filters: LogFilters,
    *,
    after_id: int | None,
    limit: int,
    descending: bool = False,
) -> list[asyncpg.Record]:
    """Log lines past the cursor (`id > after_id`, or `<` when descending); `limit + 1` rows."""
    if filters.text and isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            return await logs(conn, task_id, filters, after_id=after_id, limit=limit, descending=descending)
    order = f"id {'DESC' if descending else 'ASC'}"
    cursor = "id < {}" if descending else "id > {}"
    if filters.text and not isinstance(pool, asyncpg.Pool):
        await custom_plans(pool)
        scope = Where()
        scope.add("task_id = {}", task_id)
        matching = _log_where(task_id, filters)
        if after_id is not None:
            scope.add(cursor, after_id)
            matching.add(cursor, after_id)
        return await text_page(
            pool,
            table="data_pipeline_task_logs",
            columns=_LOG_COLUMNS,
            keys=("id",),
            descending=descending,
            scope=scope,
            matching=matching,
            limit=limit + 1,
        )
    branches = _level_branches(filters)
    where = _log_where(task_id, filters, with_level=branches is None)
    if after_id is not None:
        where.add(cursor, after_id)
    # The page's ids first (from the filters' index alone), then their rows by primary key.
    select = "SELECT id FROM data_pipeline_task_logs"
    if branches:
        ids = ordered_branches(select, where, branches, order, str(int(limit) + 1))
    else:
        ids = f"{select}{where.sql()} ORDER BY {order} LIMIT {int(limit) + 1}"
    return list(
        await pool.fetch(
            f"SELECT {_LOG_COLUMNS} FROM ({ids}) page JOIN data_pipeline_task_logs USING (id) ORDER BY {order}",
            *where.args,
        )
    )


async def count_logs(pool: Queryable, task_id: str, filters: LogFilters, *, cap: int) -> tuple[int, bool]:
    """(lines matching, exact), counted up to `cap` (see keyset.count_capped)."""
    if filters.text and isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await custom_plans(conn)
            return await count_logs(conn, task_id, filters, cap=cap)
    where = _log_where(task_id, filters)
    if filters.text:
        # _log_where's first condition is the task: the window is the task's newest lines.
        scope = Where()
        scope.clauses, scope.args = where.clauses[:1], where.args
        return await count_text(
            pool,
            table="data_pipeline_task_logs",
            columns="level_no, step_name, message, timestamp",
            order="id DESC",
            scope=scope,
            matching=where.clauses[1:],
            cap=cap,
        )
    return await count_capped(pool, f"FROM data_pipeline_task_logs{where.sql()}", where.args, cap)


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
