"""The collector's lag with the broker hop in it (issue 11, goal 1: event published -> row visible).

bench_collector.py times the collector's own share (deliveries handed over in memory). Here the events
go the whole way: published by shared.broker's Publisher (persistent, mandatory, confirmed) to the
events exchange of a topology of the bench's own (prefix and schema), routed to the collector's quorum
partition queues, consumed with the service's prefetch, batch size, flush timer, linger and
garbage-collector settings, and stored in a schema of the bench's own. An event's lag runs from the
moment it was due to be published to the commit that made its rows visible (the goal), and, printed
beside it, to the ack of its message, which the collector sends once the batch's task log files are
written too.

Three rates, each printed with p50/p99, the CPU of the broker and the collector (per message and per
event) and the cores each party used over the run (the collector, RabbitMQ, PostgreSQL, the producers):
- 5,000 events/s (the goal: p99 < 200 ms) and 2,500 events/s, a task's consecutive events in one message
  where routing allows (shared/event_batches.py) and at most ten: on this machine the producers, the
  broker, the collector and PostgreSQL share two cores, and RabbitMQ spends about a quarter of a
  millisecond of CPU per quorum message (printed), so 5,000 messages a second would take more than a core
  for the broker alone;
- 1,000 events/s, one event per message (as a step runner sends its log lines, progress and beats).
When the goal's rate misses, lower rates follow in steps of 500 events/s until the p99 holds: the
machine's capacity at the goal's latency, for comparing machines (the goal's rate is absolute, and the
two cores' speed varies between machines: the bare COPY of bench_collector did 16,000-82,000 rows/s on
the machines this project was measured on).

Every event published is found once in the event store at the end (the run fails otherwise).

`make bench` runs this against a RabbitMQ node of its own with the deployment's settings
(bench/broker_node.py), whose quorum-queue write-ahead log rolls over every 64 MiB; on RabbitMQ's
default of 512 MiB a rollover inside a run paused deliveries long enough to double the p99
(docs/scaling.md, "The eleventh session").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bench.bench_collector import task_events
from bench.checkpoint import checkpoint
from bench.process_stats import cpu_seconds, machine_busy_seconds, server_pids
from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.batch_store import PreparedBatch
from services.log_collector.handlers import BatchCollector
from services.log_collector.projections import Projector
from shared.broker import Publisher, Topology, connect, declare_topology, delete_topology, open_channel
from shared.db import pool_context
from shared.deliveries import Delivery, Message, Subscription
from shared.event_batches import batched
from shared.event_compaction import BEAT_TYPES
from shared.ids import new_task_id
from shared.messages import EventBatch, EventEnvelope, unpack
from shared.migrate import drop_schema, migrate
from shared.service import tune_garbage_collector
from shared.settings import CollectorSettings

SECONDS = 6.0  # per rate
RATES = ((5000, 10), (2500, 10), (1000, 1))  # events/s, events per message at most
GOAL_RATE, GOAL_P99 = 5000, 0.2  # events/s, s
STEP = 500  # events/s between the rates tried after a miss at the goal's rate
RUNNING_AT_ONCE = 32  # tasks whose events interleave, as under DP_MAX_CONCURRENT_TASKS=32
TICK = 0.005  # the producers sleep until a message is due when it is further off than this (s)


class _Deliveries:
    """The deliveries of one channel in order, and how many of them are settled."""

    def __init__(self) -> None:
        self.timed: list[_Timed] = []
        self.settled = 0


@dataclass
class _Timed:
    """A delivery that notes when the collector settled it; an ack with `multiple` settles the channel's
    earlier deliveries too, as the broker does."""

    message: Delivery
    deliveries: _Deliveries
    committed_at: float | None = None  # its events' rows became visible
    acked_at: float | None = None

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def channel(self) -> Any:
        return self.message.channel

    @property
    def delivery_tag(self) -> int | None:
        return self.message.delivery_tag

    @property
    def message_id(self) -> str | None:
        return self.message.message_id

    async def ack(self, multiple: bool = False) -> None:
        now = time.time()  # the producers' clock: they run in another process on this machine
        if not multiple:
            self.acked_at = self.acked_at or now
        else:
            d = self.deliveries
            while d.settled < len(d.timed) and (d.timed[d.settled].delivery_tag or 0) <= (
                self.delivery_tag or 0
            ):
                d.timed[d.settled].acked_at = d.timed[d.settled].acked_at or now
                d.settled += 1
        await self.message.ack(multiple=multiple)

    async def nack(self, requeue: bool = True) -> None:
        raise AssertionError("the benchmark's events must all be stored")

    async def reject(self, requeue: bool = False) -> None:
        raise AssertionError("the benchmark's events must all parse")


class _TimedCollector(BatchCollector):
    """The service's collector, noting when each delivery's transaction committed (its rows visible)."""

    async def _store(
        self, batch: list[tuple[Message, EventEnvelope]], prepared: PreparedBatch | None
    ) -> Projector:
        committed = await super()._store(batch, prepared)
        now = time.time()
        for message, _ in batch:
            cast(_Timed, message).committed_at = now
        return committed


def _messages(events_per_second: int, per_message: int) -> list[EventEnvelope | EventBatch]:
    """SECONDS worth of events of tasks running RUNNING_AT_ONCE at a time, as messages of at most
    `per_message` consecutive events of one task, interleaved across the running tasks."""
    start = datetime.now(UTC)
    wanted, out, total, offset = int(events_per_second * SECONDS), [], 0, 0
    while total < wanted:
        running = [
            task_events(new_task_id(start + timedelta(seconds=offset + t)), start)
            for t in range(RUNNING_AT_ONCE)
        ]
        offset += RUNNING_AT_ONCE
        chunks = [
            [m for i in range(0, len(s), per_message) for m in batched(s[i : i + per_message])]
            for s in running
        ]
        for message in (c[i] for i in range(max(map(len, chunks))) for c in chunks if i < len(c)):
            if total >= wanted:
                break
            out.append(message)
            total += len(unpack(message))
    return out


def _publisher(
    rabbitmq_url: str, prefix: str, partitions: int, rate: int, per_message: int, pipe: Any
) -> None:
    """The producers, in a process of their own (as the services are): sends the plan (each message's
    due time and event count, and what the store must hold at the end), then publishes on schedule."""
    asyncio.run(_publish(rabbitmq_url, Topology(prefix, partitions), rate, per_message, pipe))


async def _publish(rabbitmq_url: str, topology: Topology, rate: int, per_message: int, pipe: Any) -> None:
    messages = _messages(rate, per_message)
    began = time.time() + 1.0
    plan, events_before = {}, 0
    for message in messages:
        plan[str(message.event_id)] = (began + events_before / rate, len(unpack(message)))
        events_before += len(unpack(message))
    events = [e for m in messages for e in unpack(m)]
    kept = sum(e.type not in BEAT_TYPES for e in events)
    pipe.send((plan, kept, [e.event_id for e in events if e.type == "log_emitted"]))
    connection = await connect(rabbitmq_url, "dp:bench:collector-lag-producers")
    async with connection:
        channel = await open_channel(connection, prefetch=1)
        publisher = Publisher(await declare_topology(channel, topology), "bench")
        sends: list[asyncio.Task[None]] = []
        cpu_before = time.process_time()
        for message in messages:
            wait = plan[str(message.event_id)][0] - time.time()
            if wait > TICK:
                await asyncio.sleep(wait)  # the producers' clock: the next message's due time
            sends.append(asyncio.create_task(publisher.publish_event(message)))
        await asyncio.gather(*sends)
        pipe.send(time.process_time() - cpu_before)


@dataclass(frozen=True)
class _Measured:
    visible: list[float]  # each event's lag to the commit that made it visible (s, sorted)
    settled: list[float]  # ... and to the ack of its message
    messages: int
    # CPU seconds over the run: rabbitmq, postgresql, producers, collector, and the whole machine
    cpu: dict[str, float]
    seconds: float  # from the first message's due time to the last ack


async def _run(settings: CollectorSettings, rate: int, per_message: int) -> _Measured:
    """One rate's events, published on schedule and collected as the service collects them."""
    topology = Topology(settings.broker_prefix, settings.collector_partitions)
    deliveries = _Deliveries()
    delivered = deliveries.timed
    connection = await connect(settings.rabbitmq_url.get_secret_value(), "dp:bench:collector-lag")
    async with connection, pool_context(settings, max_size=4) as pool:
        channel = await open_channel(connection, prefetch=2 * settings.collector_batch_size)
        await declare_topology(channel, topology)
        with tempfile.TemporaryDirectory() as root:
            collector = _TimedCollector(
                pool=pool,
                files=TaskLogFiles(Path(root)),
                batch_size=settings.collector_batch_size,
                flush_seconds=settings.collector_flush_ms / 1000,
                linger_seconds=settings.collector_linger_ms / 1000,
                channel=channel,
            )

            async def on_message(message: Delivery) -> None:
                timed = _Timed(message, deliveries)
                delivered.append(timed)
                await collector.on_message(timed)  # type: ignore[arg-type]

            # Subscribed as the service subscribes (services/log_collector/bootstrap.py).
            consumers = [
                Subscription(channel, topology.collector_partition_queue(partition), on_message)
                for partition in range(topology.collector_partitions)
            ]
            for subscription in consumers:
                await subscription.start()
            spawn = multiprocessing.get_context("spawn")
            ours, theirs = spawn.Pipe()
            producers = spawn.Process(
                target=_publisher,
                args=(settings.rabbitmq_url.get_secret_value(), settings.broker_prefix,
                      settings.collector_partitions, rate, per_message, theirs),
            )  # fmt: skip
            producers.start()
            plan, kept, lines = await asyncio.to_thread(ours.recv)
            gc.freeze()  # the plan is the bench's bookkeeping: out of the collections the collector pays for
            servers = server_pids()
            cpu_before = {name: cpu_seconds(pids) for name, pids in servers.items()}
            machine_before = machine_busy_seconds()
            own_before = time.process_time()
            await asyncio.to_thread(producers.join)
            producers_cpu = cast(float, ours.recv())
            if producers.exitcode != 0:
                raise SystemExit(f"the producers' process ended with {producers.exitcode}")
            deadline = time.time() + 30
            while len(delivered) < len(plan) or any(t.acked_at is None for t in delivered):
                if time.time() > deadline:
                    raise SystemExit("the collector did not store every event within 30 s")
                await asyncio.sleep(0.05)  # the last batches' commits
            seconds = time.time() - min(due for due, _ in plan.values())
            cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in servers.items()}
            cpu |= {"producers": producers_cpu, "collector": time.process_time() - own_before}
            cpu["machine"] = machine_busy_seconds() - machine_before
            await collector.drain()
            for subscription in consumers:
                await subscription.cancel()
        stored = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM data_pipeline_events WHERE type <> ALL($1::text[])) AS events,"
            " (SELECT count(*) FROM data_pipeline_task_logs WHERE event_id = ANY($2::uuid[])) AS lines",
            list(BEAT_TYPES),
            lines,
        )
        await delete_topology(channel, topology)
    if (stored["events"], stored["lines"]) != (kept, len(lines)):
        # Beats may be compacted (shared/event_compaction.py); every other event and every line is stored.
        raise SystemExit(f"stored {dict(stored)}; published {kept} events besides beats, {len(lines)} lines")
    visible: list[float] = []
    settled: list[float] = []
    for timed in delivered:
        at, count = plan[timed.message_id or ""]
        visible += [(timed.committed_at or 0) - at] * count
        settled += [(timed.acked_at or 0) - at] * count
    return _Measured(sorted(visible), sorted(settled), len(plan), cpu, seconds)


def _percentiles(lags: list[float]) -> str:
    p50, p99 = statistics.median(lags), lags[int(len(lags) * 0.99) - 1]
    return f"p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms"


async def _measure(database_url: str, rabbitmq_url: str, rate: int, per_message: int) -> _Measured:
    """One rate in a schema and topology of its own, after a checkpoint."""
    suffix = uuid.uuid4().hex[:8]
    settings = CollectorSettings(
        database_url=database_url,
        rabbitmq_url=rabbitmq_url,
        db_schema=f"dp_bench_lag_{suffix}",
        broker_prefix=f"dpbenchlag{suffix}",
    )
    await migrate(settings)
    try:
        if not await checkpoint(database_url):
            print(
                "  (no CHECKPOINT before the run: this role may not; a backlog of writes may show in the lag)"
            )
        return await _run(settings, rate, per_message)
    finally:
        await drop_schema(settings)


def _holds(run: _Measured) -> bool:
    """Whether the run's p99 to the commit is under the goal's."""
    return run.visible[int(len(run.visible) * 0.99) - 1] < GOAL_P99


def _report(rate: int, per_message: int, run: _Measured) -> None:
    visible, messages = run.visible, run.messages
    goal = (
        f"   (goal p99 < {GOAL_P99 * 1000:.0f} ms) {'ok' if _holds(run) else 'MISSED'}"
        if rate == GOAL_RATE
        else ""
    )
    print(f"  {rate} events/s in {messages / SECONDS:5.0f} messages/s (at most {per_message} per message):")
    print(f"    -> rows visible (commit): {_percentiles(visible)}{goal}")
    print(f"    -> message acked (after the task log files): {_percentiles(run.settled)}")
    print(
        f"    RabbitMQ: {run.cpu['rabbitmq'] / messages * 1000:.3f} ms of CPU per message;"
        f" the collector: {run.cpu['collector'] / len(visible) * 1e6:.0f} µs per event,"
        f" {run.cpu['collector'] / messages * 1e6:.0f} µs per message"
    )
    cores = {name: f"{used / run.seconds:.2f}" for name, used in run.cpu.items()}
    print(
        f"    cores in use (of {os.cpu_count()}, over {run.seconds:.1f} s): collector {cores['collector']},"
        f" RabbitMQ {cores['rabbitmq']}, PostgreSQL {cores['postgresql']}, the producers {cores['producers']};"
        f" the machine {cores['machine']} (the kernel's share of the network and the disk included)"
    )


async def _capacity(database_url: str, rabbitmq_url: str) -> None:
    """After a miss at the goal's rate: the highest rate below it, in steps, at which the p99 holds here."""
    print(f"  the goal's rate missed: rates below it, in steps of {STEP} events/s, until the p99 holds:")
    for rate in range(GOAL_RATE - STEP, 0, -STEP):
        run = await _measure(database_url, rabbitmq_url, rate, RATES[0][1])
        print(f"    {rate} events/s: {_percentiles(run.visible)}")
        if _holds(run):
            print(
                f"  the highest rate tried with a p99 under {GOAL_P99 * 1000:.0f} ms on this machine: {rate} events/s"
            )
            return
    print(f"  no rate tried down to {STEP} events/s had a p99 under {GOAL_P99 * 1000:.0f} ms on this machine")


async def main(database_url: str, rabbitmq_url: str) -> None:
    # The collector runs in this process: under the service's garbage-collector settings (run_service's),
    # without which full collections of the bench's own objects stopped it for 33-40 ms, four times a run.
    tune_garbage_collector()
    print("collector lag through the broker, from each event's due time:")
    missed = False
    for rate, per_message in RATES:
        run = await _measure(database_url, rabbitmq_url, rate, per_message)
        _report(rate, per_message, run)
        missed = missed or (rate == GOAL_RATE and not _holds(run))
    if missed:
        await _capacity(database_url, rabbitmq_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.rabbitmq_url))
