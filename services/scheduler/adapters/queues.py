"""The scheduler's queue probe on RabbitMQ: passive declarations on a channel of its own."""

from __future__ import annotations

from aio_pika.abc import AbstractChannel

from shared.broker import Topology, queue_consumers, queue_depth


class BrokerQueueProbe:
    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self._channel = channel
        self._topology = topology
        self.steps_queue = topology.steps_queue

    def attached(self) -> bool:
        return not self._channel.is_closed

    async def collector_backlog(self) -> int:
        return sum([await queue_depth(self._channel, q) for q in self._topology.collector_queues])

    async def runners_connected(self) -> int:
        return await queue_consumers(self._channel, self._topology.steps_queue)
