"""RabbitMQ topology (described in shared/topology.py), publishing with confirms, and the one consumer wrapper every service uses.

Every name carries the configured prefix, so test runs and several deployments share one broker.
Work queues are durable quorum queues that dead-letter to `<prefix>.dead_letter`: a message that
does not parse is rejected there at once; one whose handler keeps failing is redelivered until the
queue's delivery limit moves it there. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pydantic import BaseModel, ValidationError

from shared.amqp_transport import CoalescingConnection
from shared.deliveries import Message
from shared.event_batches import batched
from shared.logging import get_logger
from shared.messages import (
    PARTITION_SLOTS,
    CommandEnvelope,
    Envelope,
    EventBatch,
    EventEnvelope,
    decode_message,
    encode,
    unpack,
)
from shared.publish_settings import PUBLISH_TIMEOUT
from shared.retry import TRANSIENT_ERRORS as TRANSIENT_ERRORS  # re-exported for the consumers
from shared.retry import delays, until_reachable
from shared.settings import CommonSettings
from shared.topology import (  # re-exported: the topology's names are part of this module's API
    DEFAULT_COLLECTOR_PARTITIONS,  # noqa: F401
    DELIVERY_LIMIT,  # noqa: F401
    RUNNER_CONTROL_EVENT_TYPES,  # noqa: F401
    SCHEDULER_EVENT_TYPES,  # noqa: F401
    SCHEDULER_KEY,  # noqa: F401
    STEPS_KEY,
    BrokerPolicy,  # noqa: F401
    ExchangeSpec,  # noqa: F401
    QueueSpec,  # noqa: F401
    Topology,
)


class PermanentError(Exception):
    """A message that can never be handled: it goes to the dead-letter queue instead of being retried."""


class RequeueMessage(Exception):
    """Handing the message back on purpose (e.g. a shutting-down runner): another consumer takes it."""


class PublishTimeout(TimeoutError):
    """No confirm within the publish deadline: transient (a TimeoutError), retried like a broker outage."""


@dataclass
class Exchanges:
    commands: AbstractExchange
    events: AbstractExchange


async def declare_topology(channel: AbstractChannel, topology: Topology) -> Exchanges:
    """Declare every exchange, queue and binding of `topology.*_specs()` (idempotent; each service calls
    it at start). Policies are the operator's (deploy/rabbitmq), not declared here. The scheduler's
    queue bound every event (`task.#`) before the partitioned routing keys: that binding is removed."""
    exchanges = {
        x.name: await channel.declare_exchange(x.name, aio_pika.ExchangeType(x.type), durable=True)
        for x in topology.exchange_specs()
    }
    for spec in topology.queue_specs():
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        for exchange, key in spec.bindings:
            await queue.bind(exchanges[exchange], routing_key=key)
        if spec.name == topology.scheduler_queue:
            await queue.unbind(exchanges[topology.events_exchange], routing_key="task.#")
    return Exchanges(
        commands=exchanges[topology.commands_exchange], events=exchanges[topology.events_exchange]
    )


async def connect(url: str, name: str = "data_pipeline") -> AbstractRobustConnection:
    """A robust connection: it reconnects after a broker restart and restores channels and consumers.

    `name` shows in the RabbitMQ console's connection list (service and prefix), so operators can tell
    which process holds which connection.
    """
    return await aio_pika.connect_robust(
        url, client_properties={"connection_name": name}, connection_class=CoalescingConnection
    )


async def connect_at_start(settings: CommonSettings, service: str) -> AbstractRobustConnection:
    """A starting service's connection (named `dp:<service>:<prefix>`), waiting up to
    DP_STARTUP_WAIT_SECONDS for the broker (shared.retry.until_reachable)."""
    return await until_reachable(
        "broker",
        "DP_RABBITMQ_URL",
        lambda: connect(settings.rabbitmq_url.get_secret_value(), f"dp:{service}:{settings.broker_prefix}"),
        settings.startup_wait_seconds,
    )


async def open_channel(connection: AbstractRobustConnection, *, prefetch: int) -> AbstractRobustChannel:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=prefetch)
    return channel


class Publisher:
    """Publishes envelopes as persistent, mandatory messages and waits for the broker's confirm, for at
    most `timeout` seconds (PublishTimeout)."""

    def __init__(self, exchanges: Exchanges, producer: str, *, timeout: float = PUBLISH_TIMEOUT) -> None:
        self._exchanges = exchanges
        self.producer = producer
        self.timeout = timeout

    def envelope(self, task_id: str, payload: BaseModel, **fields: Any) -> EventEnvelope:
        return EventEnvelope(task_id=task_id, producer=self.producer, payload=payload, **fields)  # type: ignore[arg-type]

    async def event(self, task_id: str, payload: BaseModel, **fields: Any) -> EventEnvelope:
        message = self.envelope(task_id, payload, **fields)
        await self.publish_event(message)
        return message

    async def publish_event(self, message: EventEnvelope | EventBatch) -> None:
        await _publish(
            self._exchanges.events, message.routing_key, message, str(message.event_id), self.timeout
        )

    async def publish_events(
        self, events: Sequence[EventEnvelope], orders: Mapping[uuid.UUID, CommandEnvelope] | None = None
    ) -> None:
        """Several events, in as few messages as their routing allows (shared/event_batches.py), written
        in order; then their confirms are awaited together. `orders`: the run_step commands that ride
        with their step_scheduled events (step orders)."""
        await asyncio.gather(*(self.publish_event(message) for message in batched(events, orders)))

    async def command(self, routing_key: str, payload: BaseModel, task_id: str | None) -> CommandEnvelope:
        message = CommandEnvelope(task_id=task_id, producer=self.producer, payload=payload)  # type: ignore[arg-type]
        await self.publish_command(routing_key, message)
        return message

    async def publish_command(self, routing_key: str, message: CommandEnvelope) -> None:
        await _publish(self._exchanges.commands, routing_key, message, str(message.command_id), self.timeout)


async def _publish(
    exchange: AbstractExchange,
    routing_key: str,
    message: EventEnvelope | CommandEnvelope | EventBatch,
    message_id: str,
    timeout: float = PUBLISH_TIMEOUT,
) -> None:
    """What aio-pika's Exchange.publish does, without building an aio_pika.Message first: its validated
    attributes cost more CPU than the rest of a publish (a dozen publishes per task in the scheduler).
    The channel raises on a nack (DeliveryError) and, opened with on_return_raises, on an unroutable
    mandatory message (PublishError), as before.

    The deadline covers waiting for a reconnected channel, the write and the confirm (basic_publish's
    own `timeout=` leaves out the first, which lasts as long as the connection is being restored).
    A publish cancelled before its frame left is rolled back by aiormq; one cancelled after may still
    arrive, which is harmless: envelopes are idempotent by their id."""
    owner = cast(aio_pika.Exchange, exchange).channel
    if owner.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{owner!r} closed")
    try:
        async with asyncio.timeout(timeout):
            await _write(owner, exchange.name, routing_key, message, message_id)
    except TimeoutError:
        raise PublishTimeout(f"{message.type} not confirmed within {timeout:g} s") from None


async def _write(
    owner: AbstractChannel,
    exchange: str,
    routing_key: str,
    message: EventEnvelope | CommandEnvelope | EventBatch,
    message_id: str,
) -> None:
    channel = cast(aiormq.Channel, await owner.get_underlay_channel())  # the concrete one takes `wait`
    await channel.basic_publish(
        encode(message),
        exchange=exchange,
        routing_key=routing_key,
        properties=aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id,
            message_type=message.kind if isinstance(message, EventBatch) else message.type,
            # A step order also goes to the steps queue: one message, so both queues hold it or neither
            # confirms it (RabbitMQ's sender-selected distribution routes it by this key as well).
            headers=_STEP_ORDER if isinstance(message, EventBatch) and message.command else None,
        ),
        mandatory=True,
        wait=False,  # the confirm is awaited; waiting for the socket too would send each publish alone
    )


PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)
_STEP_ORDER: dict[str, Any] = {"CC": [STEPS_KEY]}


Handler = Callable[[EventEnvelope | CommandEnvelope], Awaitable[None]]


async def handle_delivery(
    message: Message,
    handler: Handler,
    *,
    transient_budget: float = 300.0,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    envelopes_of: Callable[[EventEnvelope | CommandEnvelope | EventBatch], Sequence[Envelope]] = unpack,
) -> None:
    """Decode, handle, settle. The single place where messages are acked, requeued or dead-lettered.

    Transient failures (database or broker briefly unreachable, a publish past its deadline) are
    retried here, in order, for up to `transient_budget` seconds: requeueing at once would spend the
    quorum queue's delivery limit in moments and dead-letter a perfectly good message during an ordinary
    outage. The budget is checked between tries, so a handler's longest stay is the budget plus one try.
    When the message's own channel has closed (the broker dropped the connection), the broker has
    requeued it already: the handler returns without retrying. `envelopes_of` says what of a message the
    handler gets: its envelopes in order, or for the steps queue a step order's command.
    """
    log = get_logger(message_id=message.message_id, routing_key=message.routing_key)
    try:
        envelopes = envelopes_of(decode_message(message.body))
    except ValidationError as exc:
        log.error("malformed message sent to the dead-letter queue", error=str(exc)[:2000])
        await message.reject(requeue=False)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + transient_budget
    waits = delays(base_delay, max_delay)
    delay = next(waits)
    attempt = 0
    handled = 0  # of a batch's events: a retry goes on from the one that failed
    while True:
        attempt += 1
        envelope = envelopes[handled]
        try:
            for envelope in envelopes[handled:]:
                await handler(envelope)
                handled += 1
        except RequeueMessage as exc:
            log.info("message handed back to the queue", type=envelope.type, reason=str(exc))
            await message.nack(requeue=True)
            return
        except PermanentError as exc:
            log.error("message cannot be handled; dead-lettered", type=envelope.type, error=str(exc))
            await message.reject(requeue=False)
            return
        except TRANSIENT_ERRORS as exc:
            if _delivery_gone(message):
                # The broker requeued it when the channel closed, and it can no longer be settled here;
                # trying again would run it beside its redelivery.
                log.warning(
                    "delivery's channel closed; left to its redelivery", type=envelope.type, error=repr(exc)
                )
                return
            if loop.time() + delay > deadline:
                log.warning("transient failure persists; requeued", type=envelope.type, error=repr(exc))
                await message.nack(requeue=True)
                return
            log.info("transient failure; retrying", type=envelope.type, attempt=attempt, error=repr(exc))
            await asyncio.sleep(delay)
            delay = next(waits)
        except Exception as exc:
            # A bug or an unexpected state: requeue; the queue's delivery limit dead-letters a poison message.
            log.exception("handler failed; requeued", type=envelope.type, error=repr(exc))
            await message.nack(requeue=True)
            return
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is None or current.cancelling():
                raise  # this consumer's own cancel (its channel closed): the broker requeues the message
            # A cancel of some task the handler awaited, let out: a bug like any other. Unsettled, the
            # message would hold its prefetch slot until the connection closes.
            log.error("handler let out another task's cancellation; requeued", type=envelope.type)
            await message.nack(requeue=True)
            return
        else:
            await message.ack()
            return


def _delivery_gone(message: Message) -> bool:
    try:
        return bool(message.channel.is_closed)  # aio-pika's property raises once that channel closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return True


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Remove every queue and exchange of a prefix (tests clean up after themselves with it)."""
    for name in topology.work_queues():
        await channel.queue_delete(name)
    for partition in range(topology.collector_partitions, PARTITION_SLOTS):  # of another partition count
        await channel.queue_delete(topology.collector_partition_queue(partition))
    for name in topology.exchanges():
        await channel.exchange_delete(name)


async def queue_depth(channel: AbstractChannel, name: str) -> int:
    queue: AbstractQueue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count or 0


async def queue_consumers(channel: AbstractChannel, name: str) -> int:
    queue: AbstractQueue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.consumer_count or 0
