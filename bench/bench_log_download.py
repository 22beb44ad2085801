"""The whole-log download (GET /tasks/{id}/logs/download) on a 1M-line task, against a bare COPY of the
same rows, measured in one run (issue #10).

    .venv/bin/python -m bench.bench_log_download [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--lines 1000000]

A scratch schema, migrated like production and dropped at the end, gets one task with `--lines` log lines
(generated in the database). Printed:
- baseline: `COPY (SELECT the same columns ORDER BY id) TO STDOUT` into a byte counter: the floor for
  reading those rows out of PostgreSQL;
- the download's own path as the route runs it (adapters/log_export.py's pages rendered by PostgreSQL,
  secret masking), into a byte counter: seconds, lines/s, and the ratio to the baseline;
- the peak Python memory the download allocated (tracemalloc) against the size of the log it produced:
  streaming keeps it near one page, whatever the log's size (goal: under 10 MB; 1M lines are ~100 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
import uuid

import asyncpg

from services.api_gateway.adapters.log_export import log_pages
from services.api_gateway.adapters.read_models import LogFilters
from shared.db import pool_context
from shared.migrate import drop_schema, migrate
from shared.secrets import mask_secrets
from shared.settings import CommonSettings

MEMORY_GOAL_MB = 10.0  # a few pages' text, whatever the log's size (1M lines are ~100 MB)

_TASK_SQL = """
INSERT INTO data_pipeline_tasks (id, status, parameters, created_at, updated_at)
VALUES ($1, 'completed', '{"db_connection": "postgresql://u:***@h/db", "business_context": "bench"}', now(), now())
"""
_LOGS_SQL = """
INSERT INTO data_pipeline_task_logs (task_id, log_level, level_no, message, step_name, timestamp, event_id)
SELECT $1, CASE WHEN g % 20 = 1 THEN 'WARNING' ELSE 'INFO' END, CASE WHEN g % 20 = 1 THEN 30 ELSE 20 END,
       CASE WHEN g % 4 = 0 THEN 'table orders_' || (g % 997) || ': ' || (g % 60) || ' columns read'
            WHEN g % 4 = 1 THEN 'generated question ' || g || ' about customer_ledger_' || (g % 211)
            WHEN g % 4 = 2 THEN 'SQL of pair ' || g || ' is valid after ' || (g % 3) || ' repair rounds'
            ELSE 'LLM call took ' || (g % 5000) || ' ms for theme ' || (g % 37) END,
       (ARRAY['ddl_generation', 'qa_generation', 'sql_validation', 'training_load'])[1 + (g::bigint * 4 / $2)],
       timestamptz '2025-01-01' + g * interval '10 ms', gen_random_uuid()
FROM generate_series(0, $2::int - 1) g
"""


class _Counter:
    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)


async def main(database_url: str, lines: int) -> None:
    settings = CommonSettings(
        database_url=database_url, db_schema=f"bench_dl_{uuid.uuid4().hex[:8]}", broker_prefix="bench"
    )
    task_id = "task_20250101_000000_benchd"
    await migrate(settings)
    try:
        # Generated on a connection of its own: the pool's statement timeout is shorter than a 1M-row insert.
        started = time.perf_counter()
        conn = await asyncpg.connect(database_url, server_settings={"search_path": settings.db_schema})
        try:
            await conn.execute(_TASK_SQL, task_id)
            await conn.execute(_LOGS_SQL, task_id, lines)
            await conn.execute("VACUUM ANALYZE data_pipeline_task_logs")
        finally:
            await conn.close()
        print(f"{lines:,} log lines generated in {time.perf_counter() - started:.1f} s")
        async with pool_context(settings, max_size=2) as pool:
            copied = _Counter()
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.copy_from_query(
                    "SELECT id, timestamp, log_level, step_name, message FROM data_pipeline_task_logs"
                    " WHERE task_id = $1 ORDER BY id",
                    task_id,
                    output=copied.write,
                )
            baseline = time.perf_counter() - started

            sink = _Counter()
            tracemalloc.start()
            started = time.perf_counter()
            async for page in log_pages(pool, task_id, LogFilters()):
                await sink.write(mask_secrets(page.text).encode("utf-8"))
            download = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        await drop_schema(settings)

    print(f"baseline COPY TO STDOUT: {baseline:.2f} s ({copied.bytes / 1e6:.0f} MB)")
    print(
        f"download path: {download:.2f} s, {lines / download:,.0f} lines/s, {sink.bytes / 1e6:.0f} MB;"
        f" ratio to the baseline {download / baseline:.1f}x"
    )
    verdict = "ok" if peak / 1e6 <= MEMORY_GOAL_MB else "OVER GOAL"
    print(
        f"peak Python memory during the download: {peak / 1e6:.1f} MB for a {sink.bytes / 1e6:.0f} MB log"
        f" (goal <= {MEMORY_GOAL_MB:g} MB): {verdict}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.lines))
