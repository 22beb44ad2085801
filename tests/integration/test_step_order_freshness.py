"""Fresh step orders start without the store's check; every other order asks it (issue 11). Against the
real RabbitMQ and PostgreSQL, with the runner's own composition root: a delete the runner heard, an order
without a window and an old order are all checked and skipped; a fresh order is started without asking
(a tombstone written behind the broker's back, which no runner hears of, does not stop it); after a
reconnect the runner asks the store again until it has listened long enough."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.step_runner import bootstrap
from services.step_runner.handlers import StepRunner
from shared.broker import STEPS_KEY, Publisher, Topology, connect, declare_topology, open_channel
from shared.commands import RunStep
from shared.events import TaskDeleted
from shared.messages import CommandEnvelope, EventEnvelope, decode_messages, utcnow
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import StepName
from tests.conftest import AMQP_URL, PG_URL, runner_settings
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import close_connections_named, connections_named

pytestmark = pytest.mark.integration

STEP = StepName.DDL_GENERATION
PARAMETERS = TaskParameters(db_connection="postgresql://u:p@127.0.0.1:5432/business", business_context="x")


def _task(name: str) -> str:
    return f"task_20260101_000000_{name}"


def _order(name: str, fresh: float, issued_ago: float = 0.0) -> CommandEnvelope:
    task_id = _task(name)
    command = RunStep(
        step=STEP, execution_id=f"{task_id}_exec", attempt=1, parameters=PARAMETERS, fresh_seconds=fresh
    )
    issued = utcnow() - timedelta(seconds=issued_ago)
    return CommandEnvelope(task_id=task_id, producer="test", payload=command, issued_at=issued)


async def _tombstones(schema: str, *names: str) -> None:
    """The tasks' deletes as the store holds them, written behind the broker's back (no runner hears)."""
    pg = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    try:
        for name in names:
            await pg.execute(
                "INSERT INTO task_tombstones (task_id, deleted_at, deleted_seq, event_count, execution_count,"
                " log_count, output_count) VALUES ($1, now(), 1, 0, 0, 0, 0)",
                _task(name),
            )
    finally:
        await pg.close()


class _Outcomes:
    """The tasks whose steps started, succeeded and were cancelled, from a tap on the events exchange."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.succeeded: set[str] = set()
        self.cancelled: set[str] = set()

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        for envelope in decode_messages(message.body):
            assert isinstance(envelope, EventEnvelope)
            if envelope.type == "step_started":
                self.started.add(envelope.task_id)
            if envelope.type == "step_succeeded":
                self.succeeded.add(envelope.task_id)
            if envelope.type == "step_cancelled":
                self.cancelled.add(envelope.task_id)
        await message.ack()


@asynccontextmanager
async def _runner_and_tap(
    topology: Topology, test_env: dict[str, str], tmp_path: Path, runner_id: str, **values: object
) -> AsyncIterator[tuple[StepRunner, Publisher, _Outcomes]]:
    settings = runner_settings(test_env, topology, tmp_path, runner_id=runner_id, **values)
    direct = await connect(AMQP_URL, name=f"dp:test:{topology.prefix}")
    async with direct, bootstrap.running_runner(settings) as runner:
        channel = await open_channel(direct, prefetch=100)
        publisher = Publisher(await declare_topology(channel, topology), "test")
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(topology.events_exchange, routing_key="task.#")
        outcomes = _Outcomes()
        await tap.consume(outcomes.on_event)
        yield runner, publisher, outcomes


def _skipped(runner: StepRunner) -> float:
    return (
        runner.metrics.registry.get_sample_value("dp_runner_commands_skipped_total", {"step": STEP.value})
        or 0
    )


async def test_fresh_orders_skip_the_store_and_every_other_order_asks_it(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    await _tombstones(migrated.db_schema, "heard", "nowindow", "old", "unheard")
    async with _runner_and_tap(own_topology, test_env, tmp_path, "fresh-runner") as (runner, publisher, seen):
        assert runner.listening_since is not None
        runner.listening_since -= 60  # as if it had listened for a minute: long past twice any window
        await publisher.event(_task("heard"), TaskDeleted())
        await eventually(lambda: _task("heard") in runner.stopped, timeout=10, what="the delete was heard")

        for order in (
            _order("heard", fresh=5),  # a delete of its task reached the runner: asks the store
            _order("nowindow", fresh=0),  # an earlier scheduler's order: asks the store
            _order("old", fresh=5, issued_ago=30),  # older than its window: asks the store
            _order("unheard", fresh=5),  # fresh: started without asking
            _order("live", fresh=5),
        ):
            await publisher.publish_command(STEPS_KEY, order)
        await eventually(
            lambda: {_task("unheard"), _task("live")} <= seen.succeeded and _skipped(runner) == 3,
            timeout=15,
            what="two steps run and three skipped",
        )
        assert seen.started == {_task("unheard"), _task("live")}, seen.started


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_after_a_reconnect_fresh_orders_ask_the_store_until_the_runner_has_listened_again(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    # The control queue is exclusive: it goes with the runner's connection, and a delete sent meanwhile
    # never reaches the runner (here: a tombstone no runner hears of). Listening counts from the reconnect.
    await _tombstones(migrated.db_schema, "gap")
    async with _runner_and_tap(own_topology, test_env, tmp_path, "reconnect-runner") as (
        runner,
        publisher,
        seen,
    ):
        assert runner.listening_since is not None
        runner.listening_since -= 60
        before = runner.listening_since
        name = f"dp:step_runner:{own_topology.prefix}"
        assert await close_connections_named(name, "test: dropped")
        await eventually(lambda: connections_named(name), timeout=30, what="the runner reconnected")
        await publisher.publish_command(STEPS_KEY, _order("gap", fresh=5))
        await publisher.publish_command(STEPS_KEY, _order("after", fresh=5))
        await eventually(
            lambda: _task("after") in seen.succeeded and _skipped(runner) == 1,
            timeout=15,
            what="the deleted task's order skipped, the other run",
        )
        assert seen.started == {_task("after")}, seen.started
        assert runner.listening_since is not None and runner.listening_since > before
