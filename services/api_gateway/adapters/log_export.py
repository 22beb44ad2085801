"""A task's whole log, read in keyset pages for the download route: memory stays one page however long
the log is, and each page is one index range scan on (task_id, id).

PostgreSQL renders each page as the text of data_pipeline.log (shared/task_log.log_file_line is the same
format in Python, for the collector's file; tests hold the two equal byte for byte): one text value per
page instead of a decoded row per line makes the download several times faster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
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


# log_file_line's format: `<ISO time, ms, UTC> <level padded to 8> [<step or task>] <message, continuation
# lines indented 4> (#<id>)`.
_LINE = (
    "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"') || ' ' || log_level"
    " || repeat(' ', greatest(0, 8 - length(log_level))) || ' [' || coalesce(step_name, 'task') || '] '"
    " || replace(message, E'\\n', E'\\n    ') || ' (#' || id || E')\\n'"
)


@dataclass(frozen=True)
class LogPage:
    text: str
    lines: int


async def log_pages(
    pool: asyncpg.Pool, task_id: str, filters: LogFilters, *, page_rows: int = PAGE_ROWS
) -> AsyncIterator[LogPage]:
    """The task's matching log lines, oldest first, as data_pipeline.log text, `page_rows` lines a page."""
    where, args = _where(task_id, filters)
    after = 0
    while True:
        row = await pool.fetchrow(
            f"SELECT string_agg(line, '' ORDER BY id) AS text, max(id) AS last_id, count(*) AS lines"
            f" FROM (SELECT id, {_LINE} AS line FROM data_pipeline_task_logs"
            f" WHERE {where} AND id > ${len(args) + 1} ORDER BY id LIMIT ${len(args) + 2}) page",
            *args,
            after,
            page_rows,
        )
        if row is None or not row["lines"]:
            return
        yield LogPage(row["text"], row["lines"])
        if row["lines"] < page_rows:
            return
        after = row["last_id"]
