"""The append-only event store: insert-if-new, and replay in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from shared.messages import EVENT_ADAPTER, EventEnvelope


async def append(conn: asyncpg.Connection, env: EventEnvelope) -> int | None:
    """Store the event; returns its sequence number, or None when it was stored before (a redelivery)."""
    return await conn.fetchval(
        """
        INSERT INTO data_pipeline_events (event_id, type, task_id, occurred_at, producer, payload)
        VALUES ($1, $2, $3, $4, $5, $6)
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
