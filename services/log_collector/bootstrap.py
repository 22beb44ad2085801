"""The one place that builds the log collector's dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aio_pika.abc import AbstractRobustChannel
from aiormq.abc import FieldTable
from prometheus_client import CollectorRegistry

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.handlers import BatchCollector
from services.log_collector.metrics import CollectorMetrics
from shared.broker import Topology, connect_at_start, declare_topology, open_channel
from shared.db import pool_context
from shared.deliveries import Subscription
from shared.logging import get_logger
from shared.settings import CollectorSettings

log = get_logger()
# Subscribing to the other replicas' partitions waits this long, so replicas started together (the pods
# of a StatefulSet with Parallel management, a few seconds apart on a busy node) each become the single
# active consumer of their own partitions first (RabbitMQ 3.x makes the earliest subscriber of a
# single-active-consumer queue the active one; later ones wait as standbys).
STANDBY_DELAY_SECONDS = 5.0


def replica_number(settings: CollectorSettings, hostname: str | None = None) -> int:
    if settings.collector_replica is not None:
        return settings.collector_replica
    found = re.search(r"-(\d+)$", hostname if hostname is not None else socket.gethostname())
    return int(found.group(1)) if found else 0


def partition_order(partitions: int, replicas: int, replica: int) -> tuple[list[int], list[int]]:
    """(this replica's own partitions, the others it stands by for), each in a rotated order."""
    own = [p for p in range(partitions) if p % replicas == replica % replicas]
    others = [(replica + i) % partitions for i in range(partitions)]
    return own, [p for p in others if p not in own]


@asynccontextmanager
async def running_collector(settings: CollectorSettings) -> AsyncIterator[BatchCollector]:
    topology = Topology(settings.broker_prefix, settings.collector_partitions)
    connection = await connect_at_start(settings, "log_collector")
    async with connection, pool_context(settings, max_size=4, starting=True) as pool:
        # Two batches in flight: one stored in the background while the next one is read (handlers.py).
        channel = await open_channel(connection, prefetch=2 * settings.collector_batch_size)
        await declare_topology(channel, topology)
        collector = BatchCollector(
            pool=pool,
            files=TaskLogFiles(settings.data_root),
            batch_size=settings.collector_batch_size,
            flush_seconds=settings.collector_flush_ms / 1000,
            linger_seconds=settings.collector_linger_ms / 1000,
            channel=channel,
            metrics=CollectorMetrics.build(CollectorRegistry()),
        )
        own, others = partition_order(
            settings.collector_partitions, settings.collector_replicas, replica_number(settings)
        )
        consumers: list[Subscription] = []
        await _subscribe(channel, topology, own, collector, consumers, priority=1)
        log.info("collector consuming", queues=[topology.collector_partition_queue(p) for p in own])
        standby = asyncio.create_task(_stand_by(channel, topology, others, collector, consumers))
        try:
            yield collector
        finally:
            standby.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await standby
            for subscription in consumers:
                with contextlib.suppress(Exception):
                    await subscription.cancel()
            await collector.drain()


async def _subscribe(
    channel: AbstractRobustChannel,
    topology: Topology,
    partitions: list[int],
    collector: BatchCollector,
    consumers: list[Subscription],
    priority: int,
) -> None:
    for partition in partitions:
        # RabbitMQ 4 hands a single-active-consumer queue over to a higher-priority consumer (after the
        # active one settled what it holds): a replica added later takes its own partitions. 3.x
        # ignores the priority: the earliest subscriber stays active until it goes away.
        arguments: FieldTable = {"x-priority": priority}
        queue = topology.collector_partition_queue(partition)
        subscription = Subscription(channel, queue, collector.on_message, arguments)
        await subscription.start()
        consumers.append(subscription)


async def _stand_by(
    channel: AbstractRobustChannel,
    topology: Topology,
    partitions: list[int],
    collector: BatchCollector,
    consumers: list[Subscription],
) -> None:
    if not partitions:
        return
    await asyncio.sleep(STANDBY_DELAY_SECONDS)
    await _subscribe(channel, topology, partitions, collector, consumers, priority=0)
    log.info("collector standing by", queues=[topology.collector_partition_queue(p) for p in partitions])
