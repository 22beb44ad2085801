"""A step order (step_scheduled and its run_step in one message, docs/decisions.md "Step orders") that the
steps queue refuses while the collector's partition takes it, on the real services: the scheduler rebuilds,
the step waits as scheduled, the dispatch timeout schedules it again, and it runs once."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiormq.exceptions import DeliveryError
from prometheus_client.parser import text_string_to_metric_families

from shared.broker import STEPS_KEY, Topology
from tests.conftest import AMQP_URL, PG_URL
from tests.e2e.conftest import DB_URL, _wait_ready
from tests.support.api import Api
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import rabbitmqctl
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl"),
]
DISPATCH_TIMEOUT = 2


@pytest.fixture(scope="module")
def orders_env(
    stack_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The e2e settings in a schema and broker prefix of this module's own: its steps queue is made to
    refuse publishes, which the session's stack must not see."""
    return {
        **stack_env,
        "DP_DB_SCHEMA": f"dpo_{run_id}",
        "DP_BROKER_PREFIX": f"dpo.{run_id}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("orders-tasks")),
        "DP_HTTP_PORT": str(free_port()),
        "DP_DISPATCH_TIMEOUT_SECONDS": str(DISPATCH_TIMEOUT),
        "SCHEDULER_HEALTH_PORT": str(free_port()),
    }


@pytest.fixture(scope="module")
def orders_stack(orders_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every service but a step runner: the test starts one once its steps queue is full."""
    with own_stack(orders_env, tmp_path_factory.mktemp("orders-logs")) as stack:
        stack.start("collector")
        stack.start("scheduler", extra_env={"DP_HEALTH_PORT": orders_env["SCHEDULER_HEALTH_PORT"]})
        stack.start("gateway")
        asyncio.run(_wait_ready(f"http://127.0.0.1:{orders_env['DP_HTTP_PORT']}", stack))
        yield stack


@pytest.fixture
async def orders_api(orders_stack: Stack, orders_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{orders_env['DP_HTTP_PORT']}")


async def _rebuilds(session: aiohttp.ClientSession, port: str) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dp_scheduler_state_rebuilds_total"
    )


async def _limit_steps_queue(topology: Topology, messages: int) -> None:
    """A policy of this test's own on the steps queue: past `messages` it refuses publishes."""
    definition = {
        "max-length": messages,
        "overflow": "reject-publish",
        "dead-letter-strategy": "at-least-once",
    }
    pattern = f"^{re.escape(topology.steps_queue)}$"
    await rabbitmqctl(
        "set_policy",
        "--apply-to",
        "queues",
        "--priority",
        "10",
        _policy(topology),
        pattern,
        json.dumps(definition),
    )


def _policy(topology: Topology) -> str:
    return f"{topology.prefix}.test-refuse"


async def _fill(topology: Topology) -> None:
    """Placeholders into the steps queue until the broker refuses one (the runner dead-letters them later)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()  # with publisher confirms: a refused publish raises
        commands = await channel.get_exchange(topology.commands_exchange)
        for _ in range(100):
            try:
                await commands.publish(
                    aio_pika.Message(b'{"kind": "command", "type": "run_step"}'), STEPS_KEY
                )
            except DeliveryError:
                return
            await asyncio.sleep(0.1)  # the policy reaches a quorum queue through its own log, a moment later
    raise AssertionError("the steps queue never refused a publish")


async def test_an_order_the_steps_queue_refuses_is_scheduled_again_and_runs_once(
    orders_api: Api, orders_stack: Stack, orders_env: dict[str, str]
) -> None:
    topology = Topology(orders_env["DP_BROKER_PREFIX"])
    port = orders_env["SCHEDULER_HEALTH_PORT"]
    # A quorum queue refuses a publish once it holds max-length messages.
    await _limit_steps_queue(topology, 1)
    pg = await asyncpg.connect(PG_URL, server_settings={"search_path": orders_env["DP_DB_SCHEMA"]})
    try:
        await _fill(topology)
        rebuilds = await _rebuilds(orders_api.session, port)
        task_id = await orders_api.create(DB_URL)

        async def first_execution() -> str | None:
            return await pg.fetchval(
                "SELECT execution_id FROM data_pipeline_task_executions WHERE task_id = $1", task_id
            )

        refused = await eventually(first_execution, timeout=20, what="the first step_scheduled stored")

        async def rebuilt() -> bool:
            return await _rebuilds(orders_api.session, port) > rebuilds

        # The broker refused the order (the steps queue was full): the scheduler decides again from the store.
        await eventually(rebuilt, timeout=20, what="the scheduler rebuilt after the refused order")
        # Lifted by a limit nothing reaches: RabbitMQ 3.10 keeps a quorum queue's length limit when the
        # policy that set it is cleared.
        await _limit_steps_queue(topology, 10_000)
        orders_stack.start("runner", extra_env={"DP_RUNNER_ID": "orders-runner"})
        assert (await orders_api.wait(task_id, timeout=60))["status"] == "completed"
        rows = await pg.fetch(
            "SELECT execution_id, execution_step, status, error_message FROM data_pipeline_task_executions"
            " WHERE task_id = $1 ORDER BY id",
            task_id,
        )
        first = rows[0]
        assert (first["execution_id"], first["execution_step"], first["status"]) == (
            refused,
            "ddl_generation",
            "failed",
        )
        assert f"no step runner started the step within {DISPATCH_TIMEOUT}s" in first["error_message"]
        assert [(r["execution_step"], r["status"]) for r in rows[1:]] == [
            ("ddl_generation", "completed"),
            ("qa_generation", "completed"),
            ("sql_validation", "completed"),
            ("training_load", "completed"),
        ]
        started = await pg.fetch(
            "SELECT payload->>'execution_id' AS execution FROM data_pipeline_events"
            " WHERE task_id = $1 AND type = 'step_started'",
            task_id,
        )
        # The refused order never reached a runner; every other execution started exactly once.
        assert sorted(r["execution"] for r in started) == sorted(r["execution_id"] for r in rows[1:])
        decided = await pg.fetch(
            "SELECT type, count(*) AS n FROM data_pipeline_events WHERE task_id = $1"
            " AND type IN ('task_created', 'task_started', 'step_scheduled') GROUP BY type",
            task_id,
        )
        # The rebuild after the refusal found its decisions in the store and made none of them twice.
        assert {r["type"]: r["n"] for r in decided} == {
            "task_created": 1,
            "task_started": 1,
            "step_scheduled": 5,
        }
    finally:
        await pg.close()
        await rabbitmqctl("clear_policy", _policy(topology))
