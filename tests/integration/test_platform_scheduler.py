"""The scheduler service in-process against the real RabbitMQ and PostgreSQL: fail-over state."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest

from services.scheduler.bootstrap import running_scheduler
from shared.broker import Topology, delete_topology
from shared.db import pool_context
from shared.event_store import append
from shared.events import TaskCreated
from shared.ids import new_task_id
from shared.messages import EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.parameters import TaskParameters
from shared.settings import CommonSettings, SchedulerSettings
from shared.steps import STEP_ORDER
from tests.conftest import AMQP_URL
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import connections_named, rabbitmqctl

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")


@pytest.fixture
async def settings(
    common_settings: CommonSettings, test_env: dict[str, str]
) -> AsyncIterator[SchedulerSettings]:
    """Its own schema and broker prefix: the session's e2e services use the shared ones and would adopt
    this test's task when they rebuild."""
    suffix = uuid.uuid4().hex[:6]
    own = SchedulerSettings(
        **{
            **{k[3:].lower(): v for k, v in test_env.items()},
            "broker_prefix": f"{common_settings.broker_prefix}.sched{suffix}",
            "db_schema": f"{common_settings.db_schema}_{suffix}",
        },
        tick_interval_seconds=0.2,
        startup_sync_timeout_seconds=0,
    )
    await migrate(own)
    yield own
    await drop_schema(own)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(own.broker_prefix))


async def test_replica_that_lost_its_connection_rebuilds_when_it_is_active_again(
    settings: SchedulerSettings,
) -> None:
    async with running_scheduler(settings) as scheduler:
        await eventually(lambda: scheduler.synced, what="active and rebuilt")  # by its own ticks
        # The broker drops the replica; while it reconnects, the other replica is the active consumer
        # and creates a task (its events reach the store through the collector).
        name = f"dp:scheduler:{settings.broker_prefix}"
        before = await connections_named(name)
        assert len(before) == 1
        await rabbitmqctl("close_connection", before[0], "test: connection lost")
        task_id = new_task_id(datetime.now(UTC))
        created = EventEnvelope(
            task_id=task_id,
            producer="scheduler",
            payload=TaskCreated(
                parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="x"),
                output_directory=f"/data/{task_id}",
                steps=list(STEP_ORDER),
            ),
        )
        async with pool_context(settings, max_size=1) as pool, pool.acquire() as conn:
            await append(conn, created)

        async def reconnected() -> list[str] | None:
            after = await connections_named(name)
            return after if after and after != before else None

        await eventually(reconnected, timeout=60, interval=0.2, what=f"{name} to reconnect")
        # Active again, it must not decide from the state it had before: the task is known and admitted.
        await eventually(lambda: task_id in scheduler.states, what="the task known (no stale state)")
        await eventually(lambda: scheduler.states[task_id].status == "in_progress", what="the task admitted")
