"""The receive path's CPU per message: aio-pika's `Queue.consume` against shared/deliveries.py's
`Subscription` (aiormq's `basic_consume` underneath), measured in one run (docs/decisions.md, "The work
queues are consumed below aio-pika's Queue.consume").

    .venv/bin/python -m bench.bench_consume [--rabbitmq-url amqp://guest:guest@127.0.0.1:5672/]
        [--messages 20000] [--rounds 2]

Each way consumes the same number of persistent messages from a quorum queue of its own, filled
beforehand, through a channel opened as the services open theirs (shared.broker.open_channel, prefetch
1,000), doing nothing with a message but acking every 500th with `multiple`. The three ways alternate
`--rounds` times; printed: this process's CPU per message, the best round of each way, and the ratio to
aio-pika's coroutine callback. The third way is aio-pika with a plain function as the callback (no task
of its own per delivery), to tell the task's share from the `IncomingMessage`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import aio_pika

from shared.broker import connect, open_channel
from shared.deliveries import Subscription

BODY = b'{"padding": "' + b"x" * 400 + b'"}'  # about an event's size
ACK_EVERY = 500
WAYS = ("aio-pika, coroutine callback", "aio-pika, function callback", "shared.deliveries.Subscription")


async def _round(url: str, way: str, messages: int) -> float:
    """CPU seconds per message consumed `way`."""
    connection = await connect(url, name=f"dp:bench:consume-{uuid.uuid4().hex[:6]}")
    async with connection:
        channel = await open_channel(connection, prefetch=1000)
        queue = await channel.declare_queue(
            f"dpbenchconsume.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
        )
        try:
            for i in range(0, messages, ACK_EVERY):
                await asyncio.gather(
                    *(
                        channel.default_exchange.publish(aio_pika.Message(BODY), routing_key=queue.name)
                        for _ in range(min(ACK_EVERY, messages - i))
                    )
                )
            done = asyncio.get_running_loop().create_future()
            count = 0
            acks: set[asyncio.Task[None]] = set()

            def take(message: Any) -> None:
                nonlocal count
                count += 1
                if count % ACK_EVERY == 0 or count == messages:
                    task = asyncio.ensure_future(message.ack(multiple=True))
                    acks.add(task)
                    task.add_done_callback(acks.discard)
                if count == messages:
                    done.set_result(None)

            async def take_async(message: Any) -> None:
                take(message)

            began = time.process_time()
            if way == WAYS[2]:
                subscription = Subscription(channel, queue.name, take_async)
                await subscription.start()
            else:
                tag = await queue.consume(take_async if way == WAYS[0] else take)  # type: ignore[arg-type]
            await done
            await asyncio.gather(*acks)
            seconds = time.process_time() - began
            if way == WAYS[2]:
                await subscription.cancel()
            else:
                await queue.cancel(tag)
            return seconds / messages
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def main(url: str, messages: int, rounds: int) -> None:
    best = dict.fromkeys(WAYS, float("inf"))
    for _ in range(rounds):
        for way in WAYS:
            best[way] = min(best[way], await _round(url, way, messages))
    print(
        f"consuming {messages} quorum messages, acked every {ACK_EVERY}; best of {rounds} alternated rounds:"
    )
    for way in WAYS:
        print(f"  {way:33s} {best[way] * 1e6:6.0f} µs of CPU per message  {best[way] / best[WAYS[0]]:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.rabbitmq_url, args.messages, args.rounds))
