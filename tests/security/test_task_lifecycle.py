"""Issue 7, findings 3 and 9: a deleted task leaves nothing readable behind; an accepted task is
addressable at once, and readiness says when the collector lags.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
import pytest

from shared.broker import Topology
from shared.events import LogEmitted, StepHeartbeat
from shared.messages import EventEnvelope, encode
from shared.steps import StepName
from tests.conftest import AMQP_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import BASE, Api
from tests.support.eventually import eventually
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


async def _tables_containing(pg: asyncpg.Connection, needles: list[str]) -> dict[str, list[str]]:
    """Every text/json column of every table in the run's schema that contains one of the needles."""
    schema = await pg.fetchval("SELECT current_schema()")
    columns = await pg.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND data_type = ANY($2::text[]) ORDER BY table_name, column_name",
        schema,
        list(TEXT_TYPES),
    )
    assert {c["table_name"] for c in columns} >= {"data_pipeline_events", "data_pipeline_tasks"}
    hits: dict[str, list[str]] = {}
    for col in columns:
        table, column = col["table_name"], col["column_name"]
        for needle in needles:
            found = await pg.fetchval(
                f'SELECT count(*) FROM {schema}."{table}" WHERE strpos("{column}"::text, $1) > 0', needle
            )
            if found:
                hits.setdefault(needle, []).append(f"{table}.{column}")
    return hits


async def _assert_gone(api: Api, task_id: str) -> None:
    for path in ("", "/events", "/logs", "/files", "/stream", "/logs?follow=true"):
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}{path}")
        assert status == 404, (path, status, body)
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/ddl_generation.txt")
    assert status == 404, body
    for method, path in (("POST", "/cancel"), ("POST", "/execute"), ("DELETE", "")):
        status, body = await api.call(method, f"{BASE}/tasks/{task_id}{path}")
        assert status == 404, (method, path, status, body)


async def _publish_late_events(env: dict[str, str], task_id: str, execution_id: str) -> None:
    """What a runner still holding the deleted task's step would send: a heartbeat and a log line."""
    topology = Topology(env["DP_BROKER_PREFIX"])
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.events_exchange)
        for payload in (
            StepHeartbeat(step=StepName.DDL_GENERATION, execution_id=execution_id, runner_id="late"),
            LogEmitted(
                level="INFO",
                message="late line after delete",
                step=StepName.DDL_GENERATION,
                execution_id=execution_id,
            ),
        ):
            envelope = EventEnvelope(task_id=task_id, producer="late-runner", payload=payload)  # type: ignore[arg-type]
            await exchange.publish(aio_pika.Message(encode(envelope)), envelope.routing_key)


async def test_a_deleted_task_leaves_no_events_secret_or_log_text(
    api: Api, pg: asyncpg.Connection, stack: Stack, stack_env: dict[str, str], data_dir: Path
) -> None:
    """On the previous main, GET /events of a deleted task answered 200 with every event, and the event
    store kept its encrypted secret, parameters and log text for ever."""
    marker = uuid.uuid4().hex[:12]
    user, password = f"lc_{marker}", f"Pw-{marker}-x"
    context = f"ctx-{marker}"
    task_id = await api.create(
        f"postgresql://{user}:{password}@127.0.0.1:5432/business", business_context=context
    )
    assert (await api.wait(task_id))["status"] == "completed"
    created = await pg.fetchval(
        "SELECT payload FROM data_pipeline_events WHERE task_id = $1 AND type = 'task_created'", task_id
    )
    ciphertext = json.loads(created)["parameters"]["db_connection_secret"]
    assert ciphertext and len(ciphertext) > 40
    log_texts = [
        r["message"]
        for r in await pg.fetch("SELECT message FROM data_pipeline_task_logs WHERE task_id = $1", task_id)
        if user in r["message"]
    ]
    assert log_texts  # the runner logged the (masked) connection URL, which names the unique user
    needles = [password, ciphertext, user, context, *log_texts]
    assert await _tables_containing(pg, needles), "the needles must be findable before the delete"

    status, body = await api.call("DELETE", f"{BASE}/tasks/{task_id}")
    assert status in (200, 202), body
    await eventually(
        lambda: pg.fetchval("SELECT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = $1)", task_id),
        timeout=30,
        what="the task's tombstone",
    )
    await _assert_gone(api, task_id)
    assert await _tables_containing(pg, needles) == {}
    tombstone = await pg.fetchrow("SELECT * FROM task_tombstones WHERE task_id = $1", task_id)
    assert tombstone["event_count"] > 10 and tombstone["log_count"] >= 8 and tombstone["output_count"] == 4
    assert not (data_dir / task_id).exists()

    # A runner's late heartbeat and log line: not stored, no rows. The marker task's log proves that the
    # collector got past them (it consumes in order from one queue).
    execution_id = f"{task_id}_step_1_exec_20260101_000000"
    await _publish_late_events(stack_env, task_id, execution_id)
    after = await api.create("postgresql://u:p@127.0.0.1:5432/business")
    await api.wait(after)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id) == 0
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", task_id) == 0

    # Scheduler fail-over: the standby rebuilds from the store and must not find the task.
    stack.stop("scheduler")
    try:
        proof = await api.create("postgresql://u:p@127.0.0.1:5432/business")
        assert (await api.wait(proof))["status"] == "completed"  # the standby took over
    finally:
        stack.start("scheduler")

    # The collector's rebuild replays the store: the task stays gone.
    stack.stop("collector")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.log_collector.main",
            "rebuild",
            env={**os.environ, **stack.env},
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()
    finally:
        stack.start("collector")
    assert (await api.wait(proof))["status"] == "completed"  # the read models are back
    await _assert_gone(api, task_id)
    assert await _tables_containing(pg, needles) == {}
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id) == 0


# ---- finding 9: accepted, then unreachable ----------------------------------------------------------

LAG_LIMIT = 2.0


@pytest.fixture(scope="module")
def lag_env(
    test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpl_{key}",
        "DP_BROKER_PREFIX": f"dpl.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("lag-tasks")),
        "DP_HTTP_PORT": str(free_port()),
        "DP_EXECUTOR_REGISTRY": "tests.support.fake_executors:registry",
        "DP_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_CANCEL_GRACE_SECONDS": "3",
        "DP_SHUTDOWN_GRACE_SECONDS": "2",
        "DP_COLLECTOR_FLUSH_MS": "20",
        "DP_CREATE_VISIBILITY_TIMEOUT_SECONDS": "0.5",
        "DP_DELETE_VISIBILITY_TIMEOUT_SECONDS": "0.5",
        "DP_READY_MAX_COLLECTOR_LAG_SECONDS": str(LAG_LIMIT),
    }


@pytest.fixture(scope="module")
def lag_stack(lag_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(lag_env, tmp_path_factory.mktemp("lag-logs")) as stack:
        for name in ("collector", "scheduler", "gateway"):
            stack.start(name)
        stack.start("runner", extra_env={"DP_RUNNER_ID": "lag-runner"})
        asyncio.run(_wait_ready(f"http://127.0.0.1:{lag_env['DP_HTTP_PORT']}", stack))
        yield stack


@pytest.fixture
async def lag_api(lag_stack: Stack, lag_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{lag_env['DP_HTTP_PORT']}")


async def _readyz(api: Api) -> tuple[int, dict]:  # type: ignore[type-arg]
    return await api.call("GET", "/readyz")


async def test_an_accepted_task_is_addressable_while_the_collector_is_stalled(
    lag_api: Api, lag_stack: Stack
) -> None:
    """On the previous main, with the collector stopped, POST /tasks answered 202 and then GET, cancel and
    DELETE of that id all answered 404, while /readyz stayed 200."""
    api = lag_api
    assert (await _readyz(api))[0] == 200
    lag_stack.stop("collector")
    try:
        body = {
            "task_type": "complete_workflow",
            "parameters": {
                "db_connection": "postgresql://u:p@127.0.0.1:5432/business",
                "table_list": ["public.orders"],
                "business_context": "sleep:ddl_generation=30",
            },
        }
        status, created = await api.call("POST", f"{BASE}/tasks", json=body)
        assert status == 202, created
        task_id = created["data"]["task_id"]
        status, other = await api.call("POST", f"{BASE}/tasks", json=body)
        assert status == 202, other
        doomed = other["data"]["task_id"]

        status, detail = await api.call("GET", f"{BASE}/tasks/{task_id}")
        assert status == 200, detail
        assert detail["data"]["status"] == "pending" and detail["data"]["recorded"] is False
        assert "not recorded" in detail["data"]["response"]
        assert detail["data"]["parameters"] == {}
        status, logs = await api.call("GET", f"{BASE}/tasks/{task_id}/logs")
        assert status == 200 and logs["data"]["logs"] == [], logs
        status, listed = await api.call("GET", f"{BASE}/tasks?limit=100")
        assert task_id not in str(listed)  # the list shows recorded tasks only

        status, cancelled = await api.call("POST", f"{BASE}/tasks/{task_id}/cancel", json={"reason": "stop"})
        assert status == 202, cancelled
        status, deleting = await api.call("DELETE", f"{BASE}/tasks/{doomed}")
        assert status == 202 and deleting["data"]["deleted"] is False, deleting

        async def not_ready() -> bool:
            status, body = await _readyz(api)
            return status == 503 and "collector lagging" in body["data"]["response"]

        await eventually(not_ready, timeout=LAG_LIMIT + 10, what="readiness to fail on lag")
        status, body = await _readyz(api)
        assert body["data"]["checks"]["collector"] is False
        assert body["data"]["collector_lag_seconds"] > LAG_LIMIT
    finally:
        lag_stack.start("collector")

    assert (await api.wait(task_id, timeout=60))["status"] == "cancelled"

    async def gone() -> bool:
        return (await api.call("GET", f"{BASE}/tasks/{doomed}"))[0] == 404

    await eventually(gone, timeout=30, what="the task gone")

    async def ready() -> bool:
        return (await _readyz(api))[0] == 200

    await eventually(ready, timeout=30, what="ready again")
    detail = await api.task(task_id)
    assert detail["recorded"] is True and detail["parameters"]["db_connection"].startswith("postgresql://u:")
