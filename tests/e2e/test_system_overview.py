"""The system overview on the composed services: a running step shows with its runner, the two runners
consume the steps queue, and the step leaves the list when it ends."""

from __future__ import annotations

from typing import Any

import pytest

from shared.broker import Topology
from tests.e2e.conftest import DB_URL
from tests.support.api import Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e

URL = "/api/v0/system/overview"


async def _overview(api: Api) -> dict[str, Any]:
    status, body = await api.call("GET", URL)
    assert status == 200, body
    return body["data"]


async def test_overview_shows_the_running_step_and_the_runners(api: Api, stack_env: dict[str, str]) -> None:
    task_id = await api.create(DB_URL, "sleep:ddl_generation=3", task_name="overview")

    async def step_running() -> dict[str, Any]:
        data = await _overview(api)
        steps = [s for s in data["running_steps"] if s["task_id"] == task_id]
        assert len(steps) == 1, data["running_steps"]
        return {"data": data, "step": steps[0]}

    seen = await eventually(step_running, timeout=20, what="the task's step in the overview")
    step, data = seen["step"], seen["data"]
    assert step["step"] == "ddl_generation" and step["runner_id"] in ("runner-a", "runner-b")
    assert any(r["runner_id"] == step["runner_id"] and r["running_steps"] >= 1 for r in data["runners"])
    queues = {q["name"]: q for q in data["queues"]}
    topology = Topology(stack_env["DP_BROKER_PREFIX"])
    assert queues[topology.steps_queue]["consumers"] == 2  # runner-a and runner-b
    assert sum(q["consumers"] for name, q in queues.items() if ".collector" in name) >= 1
    assert data["queues_error"] is None and data["collector_lag_seconds"] >= 0

    assert (await api.wait(task_id))["status"] == "completed"
    data = await _overview(api)
    assert not [s for s in data["running_steps"] if s["task_id"] == task_id]
    assert {r["runner_id"] for r in data["runners"]} & {"runner-a", "runner-b"}
