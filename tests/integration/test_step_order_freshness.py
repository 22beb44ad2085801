"""Fresh step orders start without the store's check; every other order asks it (issue 11). Against the
real RabbitMQ and PostgreSQL, with the runner's own composition root: a delete the runner heard, an order
without a window and an old order are all checked and skipped; a fresh order is started without asking
(a tombstone written behind the broker's back, which no runner hears of, does not stop it); after a
reconnect the runner asks the store again until it has listened long enough."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from services.step_runner.handlers import StepRunner
from shared.broker import STEPS_KEY, Topology
from shared.events import TaskDeleted
from shared.settings import CommonSettings
from tests.conftest import PG_URL
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import close_connections_named, connections_named
from tests.support.runner_tap import STEP, order, runner_and_tap, task_id_of

pytestmark = pytest.mark.integration


async def _tombstones(schema: str, *names: str) -> None:
    """The tasks' deletes as the store holds them, written behind the broker's back (no runner hears)."""
    pg = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    try:
        for name in names:
            await pg.execute(
                "INSERT INTO task_tombstones (task_id, deleted_at, deleted_seq, event_count, execution_count,"
                " log_count, output_count) VALUES ($1, now(), 1, 0, 0, 0, 0)",
                task_id_of(name),
            )
    finally:
        await pg.close()


def _skipped(runner: StepRunner) -> float:
    return (
        runner.metrics.registry.get_sample_value("dp_runner_commands_skipped_total", {"step": STEP.value})
        or 0
    )


async def test_fresh_orders_skip_the_store_and_every_other_order_asks_it(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    await _tombstones(migrated.db_schema, "heard", "nowindow", "old", "unheard")
    async with runner_and_tap(own_topology, test_env, tmp_path, "fresh-runner") as (runner, publisher, seen):
        assert runner.listening_since is not None
        runner.listening_since -= 60  # as if it had listened for a minute: long past twice any window
        await publisher.event(task_id_of("heard"), TaskDeleted())
        await eventually(
            lambda: task_id_of("heard") in runner.stopped, timeout=10, what="the delete was heard"
        )

        for command in (
            order("heard", fresh=5),  # a delete of its task reached the runner: asks the store
            order("nowindow", fresh=0),  # an earlier scheduler's order: asks the store
            order("old", fresh=5, issued_ago=30),  # older than its window: asks the store
            order("unheard", fresh=5),  # fresh: started without asking
            order("live", fresh=5),
        ):
            await publisher.publish_command(STEPS_KEY, command)
        await eventually(
            lambda: {task_id_of("unheard"), task_id_of("live")} <= seen.succeeded and _skipped(runner) == 3,
            timeout=15,
            what="two steps run and three skipped",
        )
        assert seen.started == {task_id_of("unheard"), task_id_of("live")}, seen.started


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_after_a_reconnect_fresh_orders_ask_the_store_until_the_runner_has_listened_again(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    # The control queue is exclusive: it goes with the runner's connection, and a delete sent meanwhile
    # never reaches the runner (here: a tombstone no runner hears of). Listening counts from the reconnect.
    await _tombstones(migrated.db_schema, "gap")
    async with runner_and_tap(own_topology, test_env, tmp_path, "reconnect-runner") as (
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
        await publisher.publish_command(STEPS_KEY, order("gap", fresh=5))
        await publisher.publish_command(STEPS_KEY, order("after", fresh=5))
        await eventually(
            lambda: task_id_of("after") in seen.succeeded and _skipped(runner) == 1,
            timeout=15,
            what="the deleted task's order skipped, the other run",
        )
        assert seen.started == {task_id_of("after")}, seen.started
        assert runner.listening_since is not None and runner.listening_since > before
