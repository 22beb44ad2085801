"""Recreates the read models from the event store (`python -m services.log_collector.main rebuild`).

Runs in one transaction: readers see the old rows until the new ones are committed. Tombstones of
deleted tasks are not a read model and stay (their events were purged, so nothing of them is replayed).
The events are applied in store order, in chunks, through the same projector (and the same in-memory
fold) as the live collector. Stop the collector first (or accept that events arriving meanwhile wait in
its queue until it restarts).
"""

from __future__ import annotations

import asyncpg

from services.log_collector.projections import Projector
from shared.event_store import replay
from shared.messages import EventEnvelope

READ_MODELS = (
    "data_pipeline_task_logs",
    "data_pipeline_task_outputs",
    "data_pipeline_task_executions",
    "data_pipeline_tasks",
)
CHUNK = 1000


async def rebuild_read_models(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {', '.join(READ_MODELS)} IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)} CASCADE")
        projector = Projector(conn)
        count = 0
        chunk: list[tuple[int, EventEnvelope]] = []
        async for seq, envelope in replay(conn, batch=CHUNK):
            chunk.append((seq, envelope))
            if len(chunk) == CHUNK:
                count += await _apply(projector, chunk)
                chunk = []
        count += await _apply(projector, chunk)
    return count


async def _apply(projector: Projector, chunk: list[tuple[int, EventEnvelope]]) -> int:
    await projector.load(chunk)
    for seq, envelope in chunk:
        await projector.apply(envelope, seq)
    await projector.flush()
    projector.uow.clear()  # memory stays one chunk's rows, however large the store
    projector.finished_executions.clear()
    projector.noop_beats.clear()
    return len(chunk)
