"""Gateway: execute, cancel and delete publish commands to the scheduler, after the checks it can make."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    CommandProbe,
    ReadModels,
    commands,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration


async def test_execute_a_single_step_publishes_execute_task(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed")
    (rows.task_dir(task_id) / "qs_shop_20250101_000000_pair.json").write_text("[]")
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/execute",
        202,
        json={"execution_mode": "step", "step_name": "sql_validation", "force": True},
    )
    assert data["step"] == "sql_validation" and data["execution_mode"] == "step"  # as sent (issue #14)
    command = await commands.next()
    assert command.task_id == task_id and command.type == "execute_task"
    payload: Any = command.payload
    assert payload.execution_mode == "single" and payload.step == "sql_validation" and payload.force is True
    assert str(command.command_id) == data["command_id"]


async def test_execute_whole_workflow_with_an_empty_body(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="failed")
    await call(gateway, "POST", f"{API}/tasks/{task_id}/execute", 202)
    payload: Any = (await commands.next()).payload
    assert payload.execution_mode == "complete" and payload.step is None and payload.force is False


async def test_execute_by_step_number_and_legacy_name(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed")
    await call(gateway, "POST", f"{API}/tasks/{task_id}/execute", 202, json={"single_step": 1})
    assert (await commands.next()).payload.step == "ddl_generation"  # type: ignore[union-attr]
    await call(
        gateway, "POST", f"{API}/tasks/{task_id}/execute", 202, json={"step_name": "ddl_md_generation"}
    )
    assert (await commands.next()).payload.step == "ddl_generation"  # type: ignore[union-attr]


async def test_execute_conflicts(gateway: TestClient, commands: CommandProbe, rows: ReadModels) -> None:
    for status in ("pending", "in_progress"):
        running = await rows.task(status=status)
        data = await call(gateway, "POST", f"{API}/tasks/{running}/execute", 409, json={})
        assert data["error_type"] == "conflict" and data["task_status"] == status
    finished = await rows.task(status="completed")
    data = await call(gateway, "POST", f"{API}/tasks/{finished}/execute", 409, json={"single_step": 2})
    assert data["error_type"] == "conflict" and data["step"] == "qa_generation"
    assert any("ddl" in m for m in data["missing_inputs"])
    manual = await rows.task(task_id=f"manual_{rows.new_id()[5:20]}", status="completed")
    data = await call(gateway, "POST", f"{API}/tasks/{manual}/execute", 409, json={})
    assert "dpctl workflow run" in data["response"]
    await commands.none()


@pytest.mark.parametrize(
    ("payload", "status", "names"),
    [
        ({"single_step": 7}, 400, ["single_step"]),
        ({"single_step": "2"}, 400, ["single_step"]),
        ({"step_name": "nonsense"}, 400, ["step_name"]),
        ({"execution_mode": "single"}, 400, ["single_step"]),
        ({"execution_mode": "complete", "single_step": 2}, 400, ["single_step"]),
        ({"single_step": 1, "step_name": "qa_generation"}, 400, ["single_step", "step_name"]),
        ({"force": "yes"}, 400, ["force"]),
        ({"bogus": 1}, 400, ["bogus"]),
    ],
)
async def test_execute_rejects_bad_requests(
    gateway: TestClient, rows: ReadModels, payload: dict[str, Any], status: int, names: list[str]
) -> None:
    task_id = await rows.task(status="completed")
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/execute", status, json=payload)
    assert (data.get("invalid_params") or data.get("missing_params")) == names


async def test_execute_unknown_and_invalid_task(gateway: TestClient) -> None:
    await call(gateway, "POST", f"{API}/tasks/task_20200101_000000_nothere/execute", 404, json={})
    await call(gateway, "POST", f"{API}/tasks/not-a-task/execute", 400, json={})


async def test_cancel(gateway: TestClient, commands: CommandProbe, rows: ReadModels) -> None:
    running = await rows.task(status="in_progress")
    data = await call(gateway, "POST", f"{API}/tasks/{running}/cancel", 202, json={"reason": "enough"})
    command = await commands.next()
    assert command.type == "cancel_task" and command.task_id == running and data["command"] == "cancel_task"
    assert command.payload.reason == "enough"  # type: ignore[union-attr]
    await call(gateway, "POST", f"{API}/tasks/{running}/cancel", 202)  # no body: default reason
    assert (await commands.next()).payload.reason == "cancelled by user"  # type: ignore[union-attr]
    for status in ("completed", "failed", "cancelled", "partial_completed"):
        done = await rows.task(status=status)
        data = await call(gateway, "POST", f"{API}/tasks/{done}/cancel", 409)
        assert data["error_type"] == "conflict"
    await call(gateway, "POST", f"{API}/tasks/task_20200101_000000_nothere/cancel", 404)
    await commands.none()


def serve_deletes(commands: CommandProbe, rows: ReadModels, count: int) -> asyncio.Task[list[str]]:
    """Stand-in for scheduler + collector: removes the rows of deleted tasks."""

    async def serve() -> list[str]:
        deleted = []
        for _ in range(count):
            command = await commands.next()
            assert command.type == "delete_task" and command.task_id
            await rows.delete_task(command.task_id)
            deleted.append(command.task_id)
        return deleted

    return asyncio.create_task(serve())


async def test_delete_waits_for_the_records_to_go(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed")
    collector = serve_deletes(commands, rows, 1)
    data = await call(gateway, "DELETE", f"{API}/tasks/{task_id}", 200)
    assert data == {**data, "task_id": task_id, "deleted": True}
    assert await collector == [task_id]
    await call(gateway, "GET", f"{API}/tasks/{task_id}", 404)
    await call(gateway, "DELETE", f"{API}/tasks/{task_id}", 404)


async def test_delete_answers_202_while_the_records_remain(
    make_gateway: Any, commands: CommandProbe, rows: ReadModels
) -> None:
    client = await make_gateway(delete_visibility_timeout_seconds=0.2)
    task_id = await rows.task(status="in_progress")
    data = await call(client, "DELETE", f"{API}/tasks/{task_id}", 202)
    assert data["deleted"] is False
    assert (await commands.next()).task_id == task_id


async def test_bulk_delete(gateway: TestClient, commands: CommandProbe, rows: ReadModels) -> None:
    a, b = await rows.task(status="completed"), await rows.task(status="failed")
    unknown = "task_20200101_000000_nothere"
    collector = serve_deletes(commands, rows, 2)
    data = await call(
        gateway, "DELETE", f"{API}/tasks", 200, json={"task_ids": [a, b, unknown], "confirm": True}
    )
    assert sorted(await collector) == sorted([a, b])
    assert {r["task_id"]: r["status"] for r in data["results"]} == {
        a: "deleted",
        b: "deleted",
        unknown: "not_found",
    }
    assert (data["deleted_count"], data["pending_count"], data["not_found_count"]) == (2, 0, 1)


@pytest.mark.parametrize(
    ("payload", "kind", "names"),
    [
        ({"task_ids": ["task_20200101_000000_aaaaaa"]}, "missing_params", ["confirm"]),
        ({"task_ids": ["task_20200101_000000_aaaaaa"], "confirm": False}, "invalid_params", ["confirm"]),
        ({"task_ids": ["task_20200101_000000_aaaaaa"], "confirm": "true"}, "invalid_params", ["confirm"]),
        ({"task_ids": [], "confirm": True}, "invalid_params", ["task_ids"]),
        ({"task_ids": ["../../etc"], "confirm": True}, "invalid_params", ["task_ids"]),
        ({"confirm": True}, "missing_params", ["task_ids"]),
    ],
)
async def test_bulk_delete_rejects_bad_requests(
    gateway: TestClient, commands: CommandProbe, payload: dict[str, Any], kind: str, names: list[str]
) -> None:
    data = await call(gateway, "DELETE", f"{API}/tasks", 400, json=payload)
    assert data[kind] == names
    await commands.none()


async def test_bulk_delete_of_only_unknown_ids_reports_each(
    gateway: TestClient, commands: CommandProbe
) -> None:
    # Issue #14 item 9: ids already gone are reported per id, not a 404 for the whole call.
    gone = "task_20200101_000000_nothere"
    data = await call(gateway, "DELETE", f"{API}/tasks", 200, json={"task_ids": [gone], "confirm": True})
    assert data["results"] == [{"task_id": gone, "status": "not_found"}]
    assert data["failed_tasks"] == [{"task_id": gone, "error": "task not found", "error_code": "NOT_FOUND"}]
    assert data["summary"] == {"total_requested": 1, "successfully_deleted": 0, "failed": 1}
    await commands.none()
