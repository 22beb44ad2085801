"""Read access to the event store: the scheduler rebuilds its state from here (the collector writes it).

A deleted task has no events left (the collector purges them with the `task_deleted` event and keeps a
row in `task_tombstones`), so a rebuild cannot find it; the tombstone check below says so explicitly.
"""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from services.scheduler.domain import Finished
from shared.messages import EVENT_ADAPTER, EventEnvelope

_OPEN_TASKS = """
WITH t AS (
    SELECT task_id,
           max(seq) FILTER (WHERE type = 'task_finished') AS finished,
           max(seq) FILTER (WHERE type IN ('task_created', 'task_rerun_requested')) AS started,
           bool_or(type = 'task_deleted') AS deleted,
           bool_or(type = 'task_cancel_requested' AND (payload->>'delete_after')::boolean) AS delete_requested
    FROM data_pipeline_events
    GROUP BY task_id
)
SELECT task_id FROM t
WHERE NOT deleted AND (finished IS NULL OR started > finished OR delete_requested)
  AND NOT EXISTS (SELECT 1 FROM task_tombstones d WHERE d.task_id = t.task_id)
"""

# Finished tasks (last finish after the last create/re-run) with what retention did since that finish.
_FINISHED_TASKS = """
WITH t AS (
    SELECT task_id,
           max(seq) FILTER (WHERE type = 'task_finished') AS finished,
           max(occurred_at) FILTER (WHERE type = 'task_finished') AS finished_at,
           max(seq) FILTER (WHERE type IN ('task_created', 'task_rerun_requested')) AS started,
           max(seq) FILTER (WHERE type = 'task_logs_purged') AS logs_purged,
           max(seq) FILTER (WHERE type = 'task_files_cleaned') AS files_cleaned,
           bool_or(type = 'task_deleted') AS deleted
    FROM data_pipeline_events
    WHERE type IN ('task_created', 'task_rerun_requested', 'task_finished', 'task_logs_purged',
                   'task_files_cleaned', 'task_deleted')
    GROUP BY task_id
)
SELECT task_id, finished_at, coalesce(logs_purged > finished, false) AS logs_purged,
       coalesce(files_cleaned > finished, false) AS files_cleaned
FROM t
WHERE finished IS NOT NULL AND finished > coalesce(started, 0) AND NOT deleted
  AND (logs_purged IS NULL OR logs_purged < finished OR files_cleaned IS NULL OR files_cleaned < finished)
  AND finished_at < $1
"""


def _row_to_envelope(row: asyncpg.Record) -> EventEnvelope:
    payload = row["payload"]
    return EVENT_ADAPTER.validate_python(
        {
            "event_id": row["event_id"],
            "type": row["type"],
            "task_id": row["task_id"],
            "occurred_at": row["occurred_at"],
            "producer": row["producer"],
            "payload": json.loads(payload) if isinstance(payload, str) else payload,
        }
    )


class EventStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open_task_ids(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return [r["task_id"] for r in await conn.fetch(_OPEN_TASKS)]

    async def finished_tasks(self, finished_before: datetime) -> list[Finished]:
        """Finished tasks whose log text or files retention has not removed since their last finish."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_FINISHED_TASKS, finished_before)
        return [Finished(r["task_id"], r["finished_at"], r["logs_purged"], r["files_cleaned"]) for r in rows]

    async def task_events(self, task_id: str) -> list[EventEnvelope]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT event_id, type, task_id, occurred_at, producer, payload"
                " FROM data_pipeline_events WHERE task_id = $1 ORDER BY seq",
                task_id,
            )
        return [_row_to_envelope(r) for r in rows]
