"""GET /tasks/{id}?wait=S answers once the task settles, woken by the collector's NOTIFY (issue 11).

The task rows are written here through the collector's own `UnitOfWork` (its flush notifies new tasks
and every change of a task's status), on the real PostgreSQL; the gateway runs in process.
"""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.api_gateway import limits, waiting
from services.api_gateway.adapters.recorded import LISTENER
from services.log_collector.unit_of_work import UnitOfWork
from shared.recorded_channel import recorded_channel
from tests.conftest import PG_URL
from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ClientFactory,
    ReadModels,
    gateway,
    gateway_settings,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_create_notify import _no_reports, record_tasks
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration

# With the read-model backstop pushed past the wait, only a notification can end a wait early.
BACKSTOP = 600.0
ANSWER_WITHIN = 15.0


async def move(pg: asyncpg.Connection, task_id: str, **fields: Any) -> None:
    """Change a task's row as the collector does: through its unit of work, in one transaction."""
    async with pg.transaction():
        uow = UnitOfWork(pg, _no_reports)
        await uow.load([task_id], ())
        uow.update_task(task_id, fields)
        await uow.flush()


@pytest.fixture
async def waiting_gateway(make_gateway: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(waiting, "_BACKSTOP", (BACKSTOP, BACKSTOP))
    return await make_gateway()


async def recorded(pg: asyncpg.Connection, rows: ReadModels) -> str:
    task_id = rows.new_id()
    await record_tasks(pg, [task_id])
    rows.task_ids.append(task_id)
    return task_id


async def get(client: TestClient, task_id: str, **query: str) -> tuple[int, dict[str, Any]]:
    resp = await client.get(f"{API}/tasks/{task_id}", params=query)
    return resp.status, await resp.json()


async def waiting_on(client: TestClient, task_id: str) -> None:
    """Until a request waits on `task_id` (its waiter is registered with the listener)."""
    listener = client.app[LISTENER]
    await eventually(lambda: task_id in listener._waiters, timeout=10, what="the request to wait")


async def test_a_wait_ends_at_the_commit_that_settles_the_task_not_before(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels
) -> None:
    task_id = await recorded(pg, rows)
    answer = asyncio.create_task(get(waiting_gateway, task_id, wait="60"))
    await waiting_on(waiting_gateway, task_id)
    await move(pg, task_id, status="in_progress", progress=10)
    await move(pg, task_id, progress=50)  # no change of status: no notification
    await asyncio.sleep(0.3)  # lets a wrongly woken request answer before the check below
    assert not answer.done(), "a task still in progress must not end the wait"
    await move(pg, task_id, status="completed", progress=100)
    status, body = await asyncio.wait_for(answer, ANSWER_WITHIN)
    assert status == 200, body
    assert body["data"]["status"] == "completed" and body["data"]["progress"] == 100
    assert task_id not in waiting_gateway.app[LISTENER]._waiters


@pytest.mark.parametrize("settled", ["failed", "cancelled", "awaiting_review", "partial_completed"])
async def test_a_settled_task_is_answered_at_once(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels, settled: str
) -> None:
    task_id = await recorded(pg, rows)
    await move(pg, task_id, status=settled)
    status, body = await asyncio.wait_for(get(waiting_gateway, task_id, wait="60"), 5)
    assert status == 200 and body["data"]["status"] == settled


async def test_a_wait_runs_out_with_the_task_as_it_stands(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels
) -> None:
    task_id = await recorded(pg, rows)
    began = time.monotonic()
    status, body = await get(waiting_gateway, task_id, wait="1.5")
    assert 1.5 <= time.monotonic() - began < ANSWER_WITHIN
    assert status == 200 and body["data"]["status"] == "pending"


async def test_a_task_deleted_during_the_wait_is_a_404(
    make_gateway: ClientFactory, pg: asyncpg.Connection, rows: ReadModels
) -> None:
    client = await make_gateway()  # the real backstop: a delete does not notify
    task_id = await recorded(pg, rows)
    answer = asyncio.create_task(get(client, task_id, wait="30"))
    await waiting_on(client, task_id)
    await pg.execute("DELETE FROM data_pipeline_tasks WHERE id = $1", task_id)
    status, body = await asyncio.wait_for(answer, ANSWER_WITHIN)
    assert status == 404, body


async def test_a_wait_polls_while_the_listener_is_down(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = waiting_gateway.app[LISTENER]

    async def refused() -> None:
        raise OSError("refused by the test")

    monkeypatch.setattr(listener, "_connect", refused)
    assert await pg.fetchval("SELECT pg_terminate_backend($1)", listener.server_pid)
    await eventually(lambda: not listener.connected, timeout=10, what="the listener to notice")
    task_id = await recorded(pg, rows)
    answer = asyncio.create_task(get(waiting_gateway, task_id, wait="60"))
    await waiting_on(waiting_gateway, task_id)
    # Written without a notification: only the wait's polling can see it.
    await pg.execute("UPDATE data_pipeline_tasks SET status = 'completed' WHERE id = $1", task_id)
    status, body = await asyncio.wait_for(answer, ANSWER_WITHIN)
    assert status == 200 and body["data"]["status"] == "completed"


async def test_a_shutting_down_gateway_answers_its_waiting_reads_at_once(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels
) -> None:
    task_id = await recorded(pg, rows)
    await move(pg, task_id, status="in_progress")
    answer = asyncio.create_task(get(waiting_gateway, task_id, wait="60"))
    await waiting_on(waiting_gateway, task_id)
    await waiting_gateway.app.shutdown()  # the on_shutdown signal, as stopping the gateway sends it
    status, body = await asyncio.wait_for(answer, ANSWER_WITHIN)
    assert status == 200 and body["data"]["status"] == "in_progress"


@pytest.mark.parametrize("wait", ["-1", "61", "soon", "nan", "inf"])
async def test_a_bad_wait_is_a_400_naming_it(
    waiting_gateway: TestClient, pg: asyncpg.Connection, rows: ReadModels, wait: str
) -> None:
    task_id = await recorded(pg, rows)
    status, body = await get(waiting_gateway, task_id, wait=wait)
    assert status == 400, body
    assert "wait" in str(body), body


async def test_waiting_reads_are_capped_per_client(
    make_gateway: ClientFactory, pg: asyncpg.Connection, rows: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "WAITS_PER_CLIENT", 2)
    client = await make_gateway()
    task_ids = [await recorded(pg, rows) for _ in range(3)]
    held = [asyncio.create_task(get(client, t, wait="60")) for t in task_ids[:2]]
    for task_id in task_ids[:2]:
        await waiting_on(client, task_id)
    resp = await client.get(f"{API}/tasks/{task_ids[2]}", params={"wait": "60"})
    body = await resp.json()
    assert resp.status == 503, body
    assert resp.headers["Retry-After"] and "waiting task reads" in body["data"]["response"], body
    assert body["data"]["reason"] == "wait_limit"
    # A read that does not wait is never refused, and a settled task frees its slot.
    assert (await get(client, task_ids[2]))[0] == 200
    for task_id in task_ids[:2]:
        await move(pg, task_id, status="completed")
    assert [s for s, _ in await asyncio.wait_for(asyncio.gather(*held), ANSWER_WITHIN)] == [200, 200]
    status, _ = await asyncio.wait_for(get(client, task_ids[2], wait="0.1"), ANSWER_WITHIN)
    assert status == 200


async def test_the_collector_notifies_a_change_of_status_and_nothing_else(
    test_env: dict[str, str], pg: asyncpg.Connection, rows: ReadModels
) -> None:
    task_id = await recorded(pg, rows)
    channel = recorded_channel(gateway_settings(test_env).db_schema)
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.add_listener(channel, lambda *args: heard.put_nowait(args[-1]))
        await move(pg, task_id, progress=30)
        await move(pg, task_id, status="in_progress")
        await move(pg, task_id, status="in_progress", progress=60)  # the same status again
        await move(pg, task_id, status="completed")
        # Sent after the last commit: once it is heard, every notification of the moves above was too.
        await pg.execute("SELECT pg_notify($1, 'marker')", channel)
        payloads = [await asyncio.wait_for(heard.get(), 10)]
        while payloads[-1] != "marker":
            payloads.append(await asyncio.wait_for(heard.get(), 10))
        assert payloads == [task_id, task_id, "marker"]
    finally:
        await conn.close()
