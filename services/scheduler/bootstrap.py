"""The one place that builds the scheduler's dependencies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from prometheus_client import CollectorRegistry

from services.scheduler.adapters.pipelined import OneAtATime, PipelinedPublisher
from services.scheduler.adapters.queues import BrokerQueueProbe
from services.scheduler.handlers import Scheduler
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.state import Policy
from shared.broker import (
    SCHEDULER_KEY,
    Publisher,
    Topology,
    connect_at_start,
    declare_topology,
    handle_delivery,
    open_channel,
)
from shared.commands import Tick
from shared.db import pool_context
from shared.deliveries import Delivery, Subscription
from shared.event_store import EventStore
from shared.logging import get_logger
from shared.settings import SchedulerSettings

log = get_logger()
# Messages the broker may hand over before the earlier ones are acked: they are handled one at a time,
# in order, while the confirms of the earlier ones' decisions are still on their way.
PREFETCH = 64


def policy_from(settings: SchedulerSettings) -> Policy:
    return Policy(
        max_concurrent_tasks=settings.max_concurrent_tasks,
        task_timeout=timedelta(hours=settings.task_timeout_hours),
        heartbeat_timeout=timedelta(seconds=settings.heartbeat_timeout_seconds),
        retry_max_attempts=settings.retry_max_attempts,
        retry_base_delay=settings.retry_base_delay_seconds,
        retry_max_delay=settings.retry_max_delay_seconds,
        cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
        dispatch_timeout=timedelta(seconds=settings.dispatch_timeout_seconds),
        output_root=str(settings.data_root.resolve()),
        log_retention=_days(settings.log_retention_days),
        file_retention=_days(settings.file_retention_days),
        review_timeout=_days(settings.review_timeout_days),
    )


def _days(days: float) -> timedelta | None:
    return timedelta(days=days) if days > 0 else None


@asynccontextmanager
async def running_scheduler(settings: SchedulerSettings) -> AsyncIterator[Scheduler]:
    """Connects, rebuilds on first delivery, consumes its queue and publishes ticks until closed."""
    topology = Topology(settings.broker_prefix, settings.collector_partitions)
    connection = await connect_at_start(settings, "scheduler")
    async with connection, pool_context(settings, max_size=4, starting=True) as pool:
        channel = await open_channel(connection, prefetch=PREFETCH)
        exchanges = await declare_topology(channel, topology)
        publisher = Publisher(exchanges, producer="scheduler")
        decisions = PipelinedPublisher(publisher)
        inspect_channel = await connection.channel()
        scheduler = Scheduler(
            publisher=decisions,
            store=EventStore(pool),
            policy=policy_from(settings),
            queues=BrokerQueueProbe(inspect_channel, topology),
            sync_timeout=settings.startup_sync_timeout_seconds,
            tick_interval=settings.tick_interval_seconds,
            retention_interval=settings.retention_interval_seconds,
            retention_batch=settings.retention_batch_size,
            metrics=SchedulerMetrics.build(CollectorRegistry()),
        )

        def forget_state(*_: object) -> None:
            # The restored consumer may be the standby now, and the other replica may act meanwhile:
            # whenever this one gets messages again, it must rebuild instead of deciding from old state.
            scheduler.synced = False

        channel.reopen_callbacks.add(forget_state)
        connection.reconnect_callbacks.add(forget_state)

        handle = OneAtATime(scheduler, decisions)

        async def on_message(message: Delivery) -> None:
            await handle_delivery(message, handle)

        subscription = Subscription(channel, topology.scheduler_queue, on_message)
        await subscription.start()
        ticker = asyncio.create_task(_tick_forever(publisher, settings.tick_interval_seconds))
        log.info("scheduler consuming", queue=topology.scheduler_queue)
        try:
            yield scheduler
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            with contextlib.suppress(Exception):
                await subscription.cancel()


async def _tick_forever(publisher: Publisher, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await publisher.command(SCHEDULER_KEY, Tick(), None)
        except Exception as exc:  # the robust connection reconnects; the next tick tries again
            log.warning("tick not published", error=repr(exc))
