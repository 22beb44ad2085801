"""The seed's log story and its clients' spellings on the composed services (issue 9, items 4 and 7).

Task-level lines (`workflow_start`, `workflow_complete`, `workflow_error`, `system_check`) are derived
by the collector from the scheduler's task facts: each must be in the log table and in
`data_pipeline.log` exactly once, also for a zombie, and survive a rebuild unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


async def _task_lines(pg: asyncpg.Connection, task_id: str) -> list[asyncpg.Record]:
    return list(
        await pg.fetch(
            "SELECT id, log_level, step_name, message, module_name, function_name, extra_data, execution_id"
            " FROM data_pipeline_task_logs WHERE task_id = $1 ORDER BY id",
            task_id,
        )
    )


async def _file_lines(data_dir: Path, task_id: str, last_row_id: int) -> list[str]:
    """data_pipeline.log once the collector has written up to `last_row_id`."""
    path = data_dir / task_id / "data_pipeline.log"

    async def written() -> list[str] | None:
        if not path.exists():
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
        return lines if lines and lines[-1].endswith(f"(#{last_row_id})") else None

    return await eventually(written, timeout=30, what="data_pipeline.log to catch up")


def _steps(rows: list[asyncpg.Record]) -> list[str | None]:
    return [r["step_name"] for r in rows]


async def _finished_lines(pg: asyncpg.Connection, task_id: str, last_step: str) -> list[asyncpg.Record]:
    async def done() -> list[asyncpg.Record] | None:
        rows = await _task_lines(pg, task_id)
        return rows if rows and rows[-1]["step_name"] == last_step else None

    return await eventually(done, timeout=30, what=f"the {last_step} line of {task_id}")


async def test_completed_task_tells_its_story_once_in_table_and_file(
    api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    task_id = await api.create(DB_URL)
    assert (await api.wait(task_id))["status"] == "completed"
    rows = await _finished_lines(pg, task_id, "workflow_complete")
    steps = _steps(rows)
    assert steps.count("workflow_start") == 1 and steps.count("workflow_complete") == 1
    assert steps[0] == "workflow_start" and steps[-1] == "workflow_complete"
    assert "workflow_error" not in steps and "system_check" not in steps
    # function_name is filled on every line: the runner's caller, the scheduler's fact.
    assert all(r["function_name"] for r in rows), [(r["step_name"], r["function_name"]) for r in rows]
    assert {r["function_name"] for r in rows if r["step_name"] == "ddl_generation"} == {"run"}

    lines = await _file_lines(data_dir, task_id, rows[-1]["id"])
    assert len(lines) == len(rows)
    assert sum("[workflow_start] workflow started" in line for line in lines) == 1
    assert sum("[workflow_complete] workflow completed" in line for line in lines) == 1

    # The log is listed with the files, as type `log`, with its size as of the listing.
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, body
    logs = [f for f in body["data"]["files"] if f["file_name"] == "data_pipeline.log"]
    assert len(logs) == 1 and logs[0]["file_type"] == "log"
    assert (
        logs[0]["size"] == logs[0]["file_size"] == (data_dir / task_id / "data_pipeline.log").stat().st_size
    )
    status, _ = await api.call("GET", logs[0]["download_url"])
    assert status == 200

    # Seed spellings of the step filter, and the task-level names.
    for step, expected in (("ddl_md_generation", "ddl_generation"), ("workflow_start", "workflow_start")):
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"step": step})
        assert status == 200, body
        assert body["data"]["logs"] and {x["step_name"] for x in body["data"]["logs"]} == {expected}


async def test_failed_task_has_one_workflow_error_naming_the_step_and_reason(
    api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    task_id = await api.create(DB_URL, business_context="fail:ddl_generation")
    assert (await api.wait(task_id))["status"] == "failed"
    rows = await _finished_lines(pg, task_id, "workflow_error")
    errors = [r for r in rows if r["step_name"] == "workflow_error"]
    assert len(errors) == 1 and errors[0]["log_level"] == "ERROR"
    assert "ddl_generation" in errors[0]["message"] and "scripted failure" in errors[0]["message"]
    extra = errors[0]["extra_data"]
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra["failed_step"] == "ddl_generation"
    lines = await _file_lines(data_dir, task_id, rows[-1]["id"])
    assert sum("[workflow_error]" in line for line in lines) == 1


async def test_zombie_gets_one_system_check_line_naming_runner_and_heartbeat(
    api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    # The first attempt blocks its runner's event loop for 6 s: no heartbeats past the 3 s timeout.
    task_id = await api.create(DB_URL, business_context="block:ddl_generation=6")
    assert (await api.wait(task_id, timeout=90))["status"] == "completed"
    rows = await _finished_lines(pg, task_id, "workflow_complete")
    checks = [r for r in rows if r["step_name"] == "system_check"]
    assert len(checks) == 1, [(r["step_name"], r["message"]) for r in rows]
    zombie = await pg.fetchrow(
        "SELECT execution_id, runner_id, last_heartbeat_at FROM data_pipeline_task_executions"
        " WHERE task_id = $1 AND status = 'failed'",
        task_id,
    )
    check = checks[0]
    assert check["log_level"] == "ERROR" and check["execution_id"] == zombie["execution_id"]
    assert zombie["runner_id"] in check["message"]
    assert zombie["last_heartbeat_at"].isoformat() in check["message"]
    assert check["function_name"] == "step_failed" and check["module_name"] == "scheduler"
    lines = await _file_lines(data_dir, task_id, rows[-1]["id"])
    assert sum("[system_check]" in line for line in lines) == 1
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"step": "system_check"})
    assert status == 200 and [x["id"] for x in body["data"]["logs"]] == [check["id"]]


async def test_follow_streams_the_task_level_lines(api: Api) -> None:
    task_id = await api.create(DB_URL, business_context="sleep:ddl_generation=1.5")
    await api.wait_step(task_id, "ddl_generation", "running")
    seen: list[dict[str, Any]] = []
    async with api.session.get(
        f"{api.url}{BASE}/tasks/{task_id}/logs", params={"follow": "true"}, timeout=60
    ) as resp:
        assert resp.status == 200
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
            if line.startswith("event: end"):
                break
    steps = [s.get("step_name") for s in seen]
    assert steps.count("workflow_start") == 1 and steps.count("workflow_complete") == 1, steps


async def test_seed_spellings_status_running_and_step_names(api: Api) -> None:
    task_id = await api.create(DB_URL, business_context="sleep:ddl_generation=3")
    await api.wait_step(task_id, "ddl_generation", "running")
    status, body = await api.call("GET", f"{BASE}/tasks", params={"status": "running"})
    assert status == 200, body
    listed = {t["task_id"]: t["status"] for t in body["data"]["tasks"]}
    assert listed.get(task_id) == "in_progress"
    status, body = await api.call("GET", f"{BASE}/tasks", params={"status": "running,completed"})
    assert status == 200, body
    status, body = await api.call("GET", f"{BASE}/tasks", params={"status": "runing"})
    assert status == 400, body
    await api.wait(task_id)
    # Re-run step 1 by the seed's name.
    status, body = await api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/execute",
        json={"execution_mode": "step", "step_name": "ddl_md_generation"},
    )
    assert status == 202, body
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"step": "no_such_step"})
    assert status == 400, body
