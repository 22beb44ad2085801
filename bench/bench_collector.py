"""Times the log collector storing events in batches of 200 against one event per transaction.

    .venv/bin/python -m bench.bench_collector [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The events are a realistic mix (task and step events, heartbeats, progress, log lines) for 40 tasks,
stored through the collector's own batch consumer into a scratch schema that is dropped at the end.
Messages are in-memory stand-ins, so the numbers measure storage and projection, not the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.handlers import BatchCollector
from shared.db import pool_context
from shared.events import (
    LogEmitted,
    StepHeartbeat,
    StepProgress,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskCreated,
    TaskFinished,
    TaskStarted,
)
from shared.ids import execution_id, new_task_id
from shared.messages import EventEnvelope, encode
from shared.migrate import drop_schema, migrate
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import STEP_ORDER

TASKS = 40


class _Message:
    def __init__(self, envelope: EventEnvelope) -> None:
        self.body = encode(envelope)
        self.acked = False

    async def ack(self) -> None:
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        raise AssertionError("the benchmark's events must all be stored")

    async def reject(self, requeue: bool = False) -> None:
        raise AssertionError("the benchmark's events must all parse")


def _events(offset: int) -> list[EventEnvelope]:
    out: list[EventEnvelope] = []
    start = datetime.now(UTC)
    for t in range(TASKS):
        task_id = new_task_id(start + timedelta(seconds=offset * TASKS + t))
        payloads: list[BaseModel] = [
            TaskCreated(
                parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="bench"),
                output_directory=f"/bench/{task_id}",
                steps=list(STEP_ORDER),
            ),
            TaskStarted(),
        ]
        for step in STEP_ORDER:
            exec_id = execution_id(task_id, step, start, 1)
            payloads += [
                StepScheduled(step=step, execution_id=exec_id, attempt=1),
                StepStarted(step=step, execution_id=exec_id, runner_id="bench"),
            ]
            for i in range(5):
                payloads += [
                    StepHeartbeat(step=step, execution_id=exec_id, runner_id="bench"),
                    StepProgress(step=step, execution_id=exec_id, percent=20 * (i + 1)),
                    LogEmitted(
                        level="INFO", message=f"{step.value} line {i}", step=step, execution_id=exec_id
                    ),
                ]
            payloads.append(StepSucceeded(step=step, execution_id=exec_id))
        payloads.append(TaskFinished(status="completed"))
        out += [
            EventEnvelope(
                task_id=task_id, producer="bench", payload=p, occurred_at=start + timedelta(milliseconds=i)
            )  # type: ignore[arg-type]
            for i, p in enumerate(payloads)
        ]
    return out


async def _run(settings: CommonSettings, batch_size: int, offset: int) -> tuple[int, float]:
    events = _events(offset)
    messages = [_Message(e) for e in events]
    with tempfile.TemporaryDirectory() as root:
        async with pool_context(settings, max_size=2) as pool:
            collector = BatchCollector(
                pool=pool, files=TaskLogFiles(Path(root)), batch_size=batch_size, flush_seconds=0.005
            )
            began = time.perf_counter()
            for message in messages:
                await collector.on_message(message)  # type: ignore[arg-type]
            await collector.drain()
            elapsed = time.perf_counter() - began
    assert all(m.acked for m in messages)
    return len(messages), elapsed


async def main(database_url: str) -> None:
    settings = CommonSettings(database_url=database_url, db_schema=f"dp_bench_{uuid.uuid4().hex[:8]}")
    await migrate(settings)
    try:
        count, single = await _run(settings, batch_size=1, offset=0)
        _, batched = await _run(settings, batch_size=200, offset=1)
    finally:
        await drop_schema(settings)
    print(f"log collector, {count} events of {TASKS} tasks (store + projection + log file):")
    print(f"  one event per transaction: {single:6.2f} s  {count / single:8.0f} events/s")
    print(f"  batches of 200:            {batched:6.2f} s  {count / batched:8.0f} events/s")
    print(f"  speedup:                   {single / batched:6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(parser.parse_args().database_url))
