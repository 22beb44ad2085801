"""A task's whole log, read in keyset pages for the download route: memory stays one page however long
the log is, and each page is one index range scan on (task_id, id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from services.api_gateway.adapters.read_models import LogFilters, like_pattern

PAGE_ROWS = 5000


def _where(task_id: str, filters: LogFilters) -> tuple[str, list[Any]]:
    clauses, args = ["task_id = $1"], [task_id]

    def add(template: str, value: Any) -> None:
        args.append(value)
        clauses.append(template.format(f"${len(args)}"))

    if filters.min_level is not None:
        add("level_no >= {}", filters.min_level)
    if filters.step:
        add("step_name = {}", filters.step)
    if filters.text:
        add("message ILIKE {} ESCAPE '\\'", like_pattern(filters.text))
    if filters.since:
        add("timestamp >= {}", filters.since)
    if filters.until:
        add("timestamp <= {}", filters.until)
    return " AND ".join(clauses), args


async def log_pages(
    pool: asyncpg.Pool, task_id: str, filters: LogFilters, *, page_rows: int = PAGE_ROWS
) -> AsyncIterator[list[asyncpg.Record]]:
    """The task's matching log rows, oldest first, `page_rows` at a time (a connection per page only)."""
    where, args = _where(task_id, filters)
    after = 0
    while True:
        rows = await pool.fetch(
            "SELECT id, timestamp, log_level, step_name, message FROM data_pipeline_task_logs"
            f" WHERE {where} AND id > ${len(args) + 1} ORDER BY id LIMIT ${len(args) + 2}",
            *args,
            after,
            page_rows,
        )
        if not rows:
            return
        yield list(rows)
        if len(rows) < page_rows:
            return
        after = rows[-1]["id"]
