"""The baseline of bench/bench_e2e.py: a raw aio-pika chain of 4 hops over quorum queues, each hop
published with a publisher confirm and acked by hand after the next hop's confirm (the safety the
pipeline has, without its work: no decoding, no state, no database)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

HOPS = 4


async def run_chain_bench(
    url: str, prefix: str, chains: int, clients: int, light: int, hops: int = HOPS
) -> dict[str, float]:
    names = [f"{prefix}.raw{hops}.{i}" for i in range(hops)]
    done: dict[str, asyncio.Future[None]] = {}
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=64)
        exchange = channel.default_exchange
        for name in names:
            await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})

        def hop(i: int):  # type: ignore[no-untyped-def]
            async def on_message(message: AbstractIncomingMessage) -> None:
                if i + 1 < hops:
                    await exchange.publish(
                        aio_pika.Message(message.body, message_id=message.message_id, delivery_mode=2),
                        routing_key=names[i + 1],
                    )
                await message.ack()
                if i + 1 == hops and (future := done.pop(message.message_id or "", None)) is not None:
                    future.set_result(None)

            return on_message

        consumers = []
        for i, name in enumerate(names):
            queue = await channel.get_queue(name)
            consumers.append((queue, await queue.consume(hop(i))))

        async def one_chain() -> float:
            began = time.perf_counter()
            chain_id = uuid.uuid4().hex
            finished = done[chain_id] = asyncio.get_running_loop().create_future()
            await exchange.publish(
                aio_pika.Message(b'{"step": 0}', message_id=chain_id, delivery_mode=2), routing_key=names[0]
            )
            await finished
            return time.perf_counter() - began

        latencies = [await one_chain() for _ in range(light)]

        async def client(n: int) -> None:
            for _ in range(n):
                await one_chain()

        began = time.perf_counter()
        await asyncio.gather(*(client(chains // clients) for _ in range(clients)))
        elapsed = time.perf_counter() - began
        for queue, tag in consumers:
            await queue.cancel(tag)
        for name in names:
            await channel.queue_delete(name)
    return {
        "per_second": (chains // clients) * clients / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
    }
