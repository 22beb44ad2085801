"""Gateway: GET /api/v0/system/overview, runners, running steps, queue depths and the collector's lag."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from shared.broker import Topology
from tests.integration.gateway_fixtures import (  # noqa: F401
    ReadModels,
    ago,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration

URL = "/api/v0/system/overview"


async def _running(rows: ReadModels, task_id: str, step: str, runner: str, **columns: Any) -> str:
    execution_id = await rows.execution(task_id, step, status="running", started_at=ago(30))
    await rows.pg.execute(
        "UPDATE data_pipeline_task_executions SET runner_id = $2, progress = $3, last_heartbeat_at = now()"
        " WHERE execution_id = $1",
        execution_id,
        runner,
        columns.get("progress", 0),
    )
    return execution_id


async def test_overview_lists_runners_running_steps_and_queues(
    gateway: TestClient, rows: ReadModels, gw_topology: Topology
) -> None:
    runner = f"runner-{uuid.uuid4().hex[:6]}"
    idle = f"idle-{uuid.uuid4().hex[:6]}"
    task_id = await rows.task(status="in_progress")
    execution_id = await _running(rows, task_id, "qa_generation", runner, progress=40)
    other = await rows.task(status="completed")
    done = await rows.execution(
        other, "ddl_generation", status="completed", started_at=ago(60), completed_at=ago(50)
    )
    await rows.pg.execute(
        "UPDATE data_pipeline_task_executions SET runner_id = $2 WHERE execution_id = $1", done, idle
    )
    gone = await rows.execution(
        other, "qa_generation", status="completed", started_at=ago(7200), completed_at=ago(7100)
    )
    await rows.pg.execute(
        "UPDATE data_pipeline_task_executions SET runner_id = 'long-gone' WHERE execution_id = $1", gone
    )

    data = await call(gateway, "GET", URL, 200)
    [step] = [s for s in data["running_steps"] if s["execution_id"] == execution_id]
    assert step["task_id"] == task_id and step["step"] == "qa_generation" and step["runner_id"] == runner
    assert step["progress"] == 40 and step["started_at"] and step["last_heartbeat_at"]
    runners = {r["runner_id"]: r for r in data["runners"]}
    assert runners[runner]["running_steps"] == 1 and runners[idle]["running_steps"] == 0
    assert "long-gone" not in runners  # outside the window and running nothing
    queues = {q["name"]: q for q in data["queues"]}
    assert set(queues) == set(gw_topology.work_queues()) and data["queues_error"] is None
    assert all(q["messages"] >= 0 and q["consumers"] >= 0 for q in queues.values())
    assert isinstance(data["collector_lag_seconds"], float) and data["running_steps_truncated"] is False


async def test_a_slow_broker_gives_null_queues_with_the_reason_in_time(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(*args: object) -> object:
        await asyncio.sleep(30)  # a broker that never answers; the route must give up at 1 s
        raise AssertionError("not reached")

    monkeypatch.setattr("services.api_gateway.routes.system.queue_states", stuck)
    started = time.monotonic()
    data = await call(gateway, "GET", URL, 200)
    assert time.monotonic() - started < 3
    assert data["queues"] is None and "did not answer within 1 s" in data["queues_error"]
    assert isinstance(data["runners"], list) and isinstance(data["running_steps"], list)


async def test_a_missing_queue_is_left_out_and_the_rest_still_reported(
    gateway: TestClient, gw_topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Topology.work_queues

    def with_a_missing_one(self: Topology) -> list[str]:
        return [f"{self.prefix}.no-such-queue-{uuid.uuid4().hex[:6]}", *real(self)]

    monkeypatch.setattr(Topology, "work_queues", with_a_missing_one)
    data = await call(gateway, "GET", URL, 200)
    assert [q["name"] for q in data["queues"]] == real(gw_topology)
