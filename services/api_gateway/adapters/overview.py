"""What the system overview reads: running executions and recently seen runners from the read model
(bounded: the status index and a time window, never a scan of all tasks), and the work queues'
depths from the broker by passive declarations on a channel of the request's own (a passive
declaration of a missing queue closes its channel; the gateway's command channel must not be it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity

from shared.broker import Topology

RUNNING_STEPS_LIMIT = 200
RUNNERS_LIMIT = 100


async def running_steps(pool: asyncpg.Pool, limit: int = RUNNING_STEPS_LIMIT) -> list[asyncpg.Record]:
    """Executions running now, oldest first; `limit + 1` rows, so the caller knows there were more."""
    return list(
        await pool.fetch(
            """SELECT task_id, execution_step, execution_id, attempt, runner_id, started_at, progress,
                      last_heartbeat_at
               FROM data_pipeline_task_executions WHERE status = 'running'
               ORDER BY started_at NULLS LAST, id LIMIT $1""",
            limit + 1,
        )
    )


async def recent_runners(pool: asyncpg.Pool, window_seconds: float) -> list[asyncpg.Record]:
    """Runners with a step running now or started within the window: when each was last heard from, and
    how many steps it runs."""
    return list(
        await pool.fetch(
            """SELECT runner_id,
                      max(greatest(started_at, last_heartbeat_at, completed_at)) AS last_seen,
                      count(*) FILTER (WHERE status = 'running') AS running_steps
               FROM data_pipeline_task_executions
               WHERE runner_id IS NOT NULL
                 AND (status = 'running' OR started_at > now() - make_interval(secs => $1))
               GROUP BY runner_id ORDER BY last_seen DESC NULLS LAST LIMIT $2""",
            window_seconds,
            RUNNERS_LIMIT,
        )
    )


@dataclass(frozen=True)
class QueueState:
    name: str
    messages: int
    consumers: int


async def queue_states(connection: AbstractRobustConnection, topology: Topology) -> list[QueueState]:
    """Every work queue's ready messages and consumers (a queue that does not exist is left out)."""
    states = []
    channel = await connection.channel(publisher_confirms=False)
    try:
        for name in topology.work_queues():
            try:
                queue = await channel.declare_queue(name, passive=True)
            except ChannelNotFoundEntity:  # the broker closed the channel: the next queue gets a new one
                channel = await connection.channel(publisher_confirms=False)
                continue
            result = queue.declaration_result
            states.append(QueueState(name, result.message_count or 0, result.consumer_count or 0))
        return states
    finally:
        if not channel.is_closed:
            await asyncio.shield(channel.close())
