"""The one place that builds the log collector's dependencies."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.handlers import BatchCollector
from services.log_collector.metrics import CollectorMetrics
from shared.broker import Topology, connect, declare_topology, open_channel
from shared.db import pool_context
from shared.logging import get_logger
from shared.settings import CollectorSettings

log = get_logger()


@asynccontextmanager
async def running_collector(settings: CollectorSettings) -> AsyncIterator[BatchCollector]:
    topology = Topology(settings.broker_prefix)
    connection = await connect(
        settings.rabbitmq_url.get_secret_value(), f"dp:log_collector:{settings.broker_prefix}"
    )
    async with connection, pool_context(settings, max_size=4) as pool:
        channel = await open_channel(connection, prefetch=settings.collector_batch_size)
        await declare_topology(channel, topology)
        collector = BatchCollector(
            pool=pool,
            files=TaskLogFiles(settings.data_root),
            batch_size=settings.collector_batch_size,
            flush_seconds=settings.collector_flush_ms / 1000,
            channel=channel,
            metrics=CollectorMetrics.build(CollectorRegistry()),
        )
        queue = await channel.get_queue(topology.collector_queue)
        consumer_tag = await queue.consume(collector.on_message)
        log.info("collector consuming", queue=topology.collector_queue)
        try:
            yield collector
        finally:
            with contextlib.suppress(Exception):
                await queue.cancel(consumer_tag)
            await collector.drain()
