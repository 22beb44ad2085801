"""A small HTTP client for the gateway, as the UI and scripts use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.eventually import eventually

BASE = "/api/v0/data_pipeline"
TERMINAL = ("completed", "partial_completed", "failed", "cancelled")


@dataclass
class Api:
    session: aiohttp.ClientSession
    url: str

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        async with self.session.request(method, self.url + path, **kwargs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, {"raw": await resp.text()}

    async def create(self, db_connection: str, business_context: str = "plain", **params: Any) -> str:
        body = {
            "task_type": "complete_workflow",
            "parameters": {
                "db_connection": db_connection,
                "table_list": params.pop("table_list", ["public.orders"]),
                "business_context": business_context,
                **params,
            },
        }
        status, data = await self.call("POST", f"{BASE}/tasks", json=body)
        assert status in (201, 202), data  # 202: accepted, not yet in the read model
        return data["data"]["task_id"]

    async def task(self, task_id: str) -> dict[str, Any]:
        status, data = await self.call("GET", f"{BASE}/tasks/{task_id}")
        assert status == 200, data
        return data["data"]

    async def wait(
        self, task_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 60
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any]:
            status, data = await self.call("GET", f"{BASE}/tasks/{task_id}")
            assert status == 200, data  # 404 until the read model has the task
            assert data["data"]["status"] in statuses, data["data"]
            return data["data"]

        return await eventually(reached, timeout=timeout, interval=0.2, what=f"task {task_id} in {statuses}")

    async def wait_step(self, task_id: str, step: str, status: str, timeout: float = 30) -> dict[str, Any]:
        async def reached() -> dict[str, Any]:
            detail = await self.task(task_id)
            assert detail["step_status"].get(step) == status, detail.get("step_status")
            return detail

        return await eventually(reached, timeout=timeout, what=f"{task_id} step {step} {status}")
