"""Recreates the read models from the event store (`python -m services.log_collector.main rebuild`).

Runs in one transaction: readers see the old rows until the new ones are committed. Tombstones of
deleted tasks are not a read model and stay (their events were purged, so nothing of them is replayed).
Stop the collector first (or accept that events arriving meanwhile wait in its queue until it restarts).
"""

from __future__ import annotations

import asyncpg

from services.log_collector.projections import Projector
from shared.event_store import replay

READ_MODELS = (
    "data_pipeline_task_logs",
    "data_pipeline_task_outputs",
    "data_pipeline_task_executions",
    "data_pipeline_tasks",
)


async def rebuild_read_models(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {', '.join(READ_MODELS)} IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)} CASCADE")
        projector = Projector(conn)
        count = 0
        async for seq, envelope in replay(conn):
            await projector.apply(envelope, seq)
            count += 1
    return count
