"""The one consumer wrapper: how each kind of failure settles a message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from shared.broker import PermanentError, RequeueMessage, handle_delivery
from shared.events import TaskStarted
from shared.messages import EventEnvelope, encode


class Message:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.message_id = "m1"
        self.routing_key = "task.t.task_started"
        self.settled: list[str] = []
        self.channel_closed = False

    @property
    def channel(self) -> Any:  # as aio-pika's IncomingMessage: the channel it came on, refused once closed
        if self.channel_closed:
            raise ChannelInvalidStateError
        return self

    is_closed = False

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack(requeue={requeue})")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append(f"reject(requeue={requeue})")


def _message() -> Message:
    return Message(encode(EventEnvelope(task_id="t", producer="test", payload=TaskStarted())))


def _failing(errors: list[BaseException]) -> Any:
    calls: list[Any] = []

    async def handler(envelope: Any) -> None:
        calls.append(envelope)
        if errors:
            raise errors.pop(0)

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


async def test_transient_failures_are_retried_in_place_then_acked() -> None:
    message = _message()
    handler = _failing([ConnectionRefusedError(), TimeoutError(), OSError()])
    await handle_delivery(message, handler, base_delay=0.001)  # type: ignore[arg-type]
    assert message.settled == ["ack"]
    assert len(handler.calls) == 4


async def test_a_transient_failure_outlasting_the_budget_is_requeued() -> None:
    message = _message()
    handler = _failing([ConnectionRefusedError()] * 100)
    await handle_delivery(message, handler, transient_budget=0.05, base_delay=0.01, max_delay=0.01)  # type: ignore[arg-type]
    assert message.settled == ["nack(requeue=True)"]
    assert 2 <= len(handler.calls) <= 10


async def test_a_delivery_whose_channel_closed_is_not_retried_nor_settled() -> None:
    # The broker dropped the connection mid-handler: it has requeued the message already, so a retry would
    # run it beside its redelivery (a runner holding a step for minutes, issue 11).
    message = _message()
    calls = 0

    async def handler(envelope: Any) -> None:
        nonlocal calls
        calls += 1
        message.channel_closed = True
        raise ConnectionResetError()

    await handle_delivery(message, handler, transient_budget=0.05, base_delay=0.001, max_delay=0.01)  # type: ignore[arg-type]
    assert (calls, message.settled) == (1, [])


@pytest.mark.parametrize(
    ("error", "settled"),
    [
        (PermanentError("never"), ["reject(requeue=False)"]),
        (RequeueMessage("shutting down"), ["nack(requeue=True)"]),
        (ValueError("bug"), ["nack(requeue=True)"]),
    ],
)
async def test_other_failures(error: BaseException, settled: list[str]) -> None:
    message = _message()
    await handle_delivery(message, _failing([error]))  # type: ignore[arg-type]
    assert message.settled == settled


async def test_malformed_message_is_dead_lettered_without_calling_the_handler() -> None:
    message = Message(b'{"kind": "event", "type": "nope"}')
    handler = _failing([])
    await handle_delivery(message, handler)  # type: ignore[arg-type]
    assert message.settled == ["reject(requeue=False)"]
    assert handler.calls == []


async def test_a_cancellation_let_out_of_an_awaited_task_is_requeued_not_left_unsettled() -> None:
    # A handler that awaits a task someone else cancelled sees its CancelledError, though the consumer
    # itself was not cancelled: unsettled, the message would hold the consumer's prefetch slot for good.
    message = _message()

    async def handler(envelope: Any) -> None:
        inner = asyncio.create_task(asyncio.sleep(10))  # cancelled before it runs
        inner.cancel()
        await inner

    await handle_delivery(message, handler)  # type: ignore[arg-type]
    assert message.settled == ["nack(requeue=True)"]


async def test_the_consumers_own_cancellation_goes_through_unsettled() -> None:
    # Its channel closed: the broker requeues the message itself, and nothing can be settled on it.
    message = _message()
    entered = asyncio.Event()

    async def handler(envelope: Any) -> None:
        entered.set()
        await asyncio.sleep(10)  # until cancelled below

    consumer = asyncio.create_task(handle_delivery(message, handler))  # type: ignore[arg-type]
    await entered.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert message.settled == []
