"""The event store: insert-if-new, replay in order, purge a deleted task's events and an old task's
log text (log retention)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg

from shared.messages import EVENT_ADAPTER, EventEnvelope


async def append(conn: asyncpg.Connection, env: EventEnvelope) -> int | None:
    """Store the event; returns its sequence number, or None when it was stored before (a redelivery)
    or its task was deleted (a runner's last heartbeat or log line arriving after the purge)."""
    return await conn.fetchval(
        """
        INSERT INTO data_pipeline_events (event_id, type, task_id, occurred_at, producer, payload)
        SELECT $1::uuid, $2::varchar, $3::varchar, $4::timestamptz, $5::varchar, $6::jsonb
        WHERE NOT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = $3::varchar)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING seq
        """,
        env.event_id,
        env.type,
        env.task_id,
        env.occurred_at,
        env.producer,
        env.payload.model_dump(mode="json"),
    )


async def purge_task(conn: asyncpg.Connection, env: EventEnvelope, seq: int) -> None:
    """Replace a deleted task's events and rows by a tombstone holding ids and counts only.

    The event history of a deleted task held its (encrypted) connection secret, its log text and its
    parameters; nothing of it may outlive the delete. The tombstone keeps late events out of the store
    (see `append`), and neither the scheduler's rebuild nor the collector's replay can find the task again.
    """
    counts = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM data_pipeline_events WHERE task_id = $1) AS events,
               (SELECT count(*) FROM data_pipeline_task_executions WHERE task_id = $1) AS executions,
               (SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1) AS logs,
               (SELECT count(*) FROM data_pipeline_task_outputs WHERE task_id = $1) AS outputs
        """,
        env.task_id,
    )
    await conn.execute(
        """
        INSERT INTO task_tombstones (task_id, deleted_at, deleted_seq, event_count, execution_count,
            log_count, output_count)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (task_id) DO NOTHING
        """,
        env.task_id,
        env.occurred_at,
        seq,
        counts["events"],
        counts["executions"],
        counts["logs"],
        counts["outputs"],
    )
    await conn.execute("DELETE FROM data_pipeline_tasks WHERE id = $1", env.task_id)  # rows cascade
    await conn.execute("DELETE FROM data_pipeline_events WHERE task_id = $1", env.task_id)


async def purge_logs(conn: asyncpg.Connection, task_id: str, seq: int) -> None:
    """Log retention for one task: its log rows and the `log_emitted` events stored before `seq` go
    (the store keeps the task's other events, so the task record survives a rebuild)."""
    await conn.execute("DELETE FROM data_pipeline_task_logs WHERE task_id = $1 AND id < $2", task_id, seq)
    await conn.execute(
        "DELETE FROM data_pipeline_events WHERE task_id = $1 AND type = 'log_emitted' AND seq < $2",
        task_id,
        seq,
    )


async def replay(conn: asyncpg.Connection, batch: int = 1000) -> AsyncIterator[tuple[int, EventEnvelope]]:
    last = 0
    while True:
        rows = await conn.fetch(
            "SELECT seq, event_id, type, task_id, occurred_at, producer, payload FROM data_pipeline_events"
            " WHERE seq > $1 ORDER BY seq LIMIT $2",
            last,
            batch,
        )
        if not rows:
            return
        for row in rows:
            last = row["seq"]
            yield (
                row["seq"],
                EVENT_ADAPTER.validate_python(
                    {k: row[k] for k in ("event_id", "type", "task_id", "occurred_at", "producer", "payload")}
                ),
            )


async def task_events_through(
    conn: asyncpg.Connection, task_id: str, seq: int, types: tuple[str, ...]
) -> list[EventEnvelope]:
    """A task's events of the given types stored up to and including `seq`, in store order: what was
    known when that event happened, on the live path and in a rebuild alike."""
    rows = await conn.fetch(
        "SELECT event_id, type, task_id, occurred_at, producer, payload FROM data_pipeline_events"
        " WHERE task_id = $1 AND seq <= $2 AND type = ANY($3::text[]) ORDER BY seq",
        task_id,
        seq,
        list(types),
    )
    return [
        EVENT_ADAPTER.validate_python(
            {
                **{k: row[k] for k in ("event_id", "type", "task_id", "occurred_at", "producer")},
                "payload": json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"],
            }
        )
        for row in rows
    ]
