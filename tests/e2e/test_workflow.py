"""The task lifecycle through HTTP against the real services, with scripted step executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e
STEPS = ["ddl_generation", "qa_generation", "sql_validation", "training_load"]


async def _executions(pg: asyncpg.Connection, task_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(
        "SELECT execution_step, status, attempt, runner_id, error_message, execution_id"
        " FROM data_pipeline_task_executions WHERE task_id = $1 ORDER BY id",
        task_id,
    )


async def test_complete_run(api: Api, pg: asyncpg.Connection, data_dir: Path) -> None:
    task_id = await api.create(DB_URL, task_name="complete run")
    # Right after POST returns, the task is visible.
    assert (await api.task(task_id))["task_id"] == task_id
    detail = await api.wait(task_id)
    assert detail["status"] == "completed"
    assert detail["progress"] == 100
    assert detail["step_status"] == dict.fromkeys(STEPS, "completed")
    assert [s["status"] for s in detail["steps"]] == ["completed"] * 4
    assert [r["execution_step"] for r in await _executions(pg, task_id)] == STEPS

    status, files = await api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200
    names = {f["file_name"] for f in files["data"]["files"]}
    assert {f"{s}.txt" for s in STEPS} <= names
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/qa_generation.txt")
    assert status == 200 and f"output for {task_id}" in body["raw"]

    status, logs = await api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"limit": 1000})
    assert status == 200
    rows = await pg.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", task_id)
    # three lines per scripted step, plus the task-level workflow_start and workflow_complete
    assert rows == 14
    assert len(logs["data"]["logs"]) == rows
    log_file = (data_dir / task_id / "data_pipeline.log").read_text().splitlines()
    assert len(log_file) == rows


async def test_single_step_run(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL, execution_mode="single", single_step=1)
    detail = await api.wait(task_id)
    assert detail["status"] == "completed"
    assert detail["step_status"]["ddl_generation"] == "completed"
    assert detail["step_status"]["qa_generation"] == "skipped"
    assert [r["execution_step"] for r in await _executions(pg, task_id)] == ["ddl_generation"]
    assert detail["plan"][1]["reason"] == "single mode runs step 1 (ddl_generation) only"
    # A new task has nothing but its table list: a single step past the first is refused (409).
    status, body = await api.call(
        "POST",
        f"{BASE}/tasks",
        json={
            "parameters": {
                "db_connection": DB_URL,
                "business_context": "plain",
                "table_list": ["public.orders"],
                "execution_mode": "single",
                "single_step": 2,
            }
        },
    )
    assert status == 409 and body["data"]["step"] == "qa_generation", body


async def test_steps_disabled_by_parameters_are_skipped(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL, enable_sql_validation=False, enable_training_data_load=False)
    detail = await api.wait(task_id)
    assert detail["status"] == "completed"
    assert detail["step_status"] == {
        "ddl_generation": "completed",
        "qa_generation": "completed",
        "sql_validation": "skipped",
        "training_load": "skipped",
    }
    assert [r["execution_step"] for r in await _executions(pg, task_id)] == STEPS[:2]


async def test_failure_of_a_middle_step(api: Api) -> None:
    task_id = await api.create(DB_URL, business_context="fail:qa_generation")
    detail = await api.wait(task_id)
    assert detail["status"] == "partial_completed"
    assert detail["step_status"]["ddl_generation"] == "completed"
    assert detail["step_status"]["qa_generation"] == "failed"
    assert detail["step_status"]["sql_validation"] == "pending"
    assert "scripted failure of qa_generation" in detail["error_message"]


async def test_transient_failure_is_retried(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL, business_context="transient:sql_validation")
    detail = await api.wait(task_id)
    assert detail["status"] == "completed"
    runs = [
        (r["status"], r["attempt"])
        for r in await _executions(pg, task_id)
        if r["execution_step"] == "sql_validation"
    ]
    assert runs == [("failed", 1), ("completed", 2)]


async def test_concurrency_limit_queues_tasks(api: Api, pg: asyncpg.Connection) -> None:
    ids = [await api.create(DB_URL, business_context="sleep:ddl_generation=0.8") for _ in range(3)]
    most = 0

    async def all_completed() -> bool:
        nonlocal most
        rows = await pg.fetch("SELECT status FROM data_pipeline_tasks WHERE id = ANY($1)", ids)
        statuses = [r["status"] for r in rows]
        most = max(most, statuses.count("in_progress"))  # sampled on every check
        if "failed" in statuses:
            pytest.fail(f"a queued task failed: {statuses}")
        return len(statuses) == len(ids) and all(s == "completed" for s in statuses)

    await eventually(all_completed, timeout=60, interval=0.05, what="the three tasks completed")
    assert most == 1  # DP_MAX_CONCURRENT_TASKS=1: the others waited as pending, none was rejected


async def test_cancel_running_task(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL, business_context="sleep:ddl_generation=20")
    await api.wait_step(task_id, "ddl_generation", "running")
    status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/cancel")
    assert status == 202, body
    detail = await api.wait(task_id, timeout=15)
    assert detail["status"] == "cancelled"
    assert detail["step_status"]["ddl_generation"] == "cancelled"
    assert [r["status"] for r in await _executions(pg, task_id)] == ["cancelled"]
    status, _ = await api.call("POST", f"{BASE}/tasks/{task_id}/cancel")
    assert status == 409


async def test_delete_running_task(api: Api, pg: asyncpg.Connection, data_dir: Path) -> None:
    task_id = await api.create(DB_URL, business_context="sleep:ddl_generation=20")
    await api.wait_step(task_id, "ddl_generation", "running")
    assert (data_dir / task_id).exists()
    status, _ = await api.call("DELETE", f"{BASE}/tasks/{task_id}")
    assert status in (200, 202)

    async def gone() -> bool:
        status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
        return status == 404

    await eventually(gone, timeout=15, what=f"{task_id} to be gone")
    await eventually(lambda: not (data_dir / task_id).exists(), timeout=5, what="the task directory removed")
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", task_id) == 0
    # The task's events are purged; a tombstone with counts remains (issue 7, finding 3).
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id) == 0
    assert await pg.fetchval("SELECT event_count FROM task_tombstones WHERE task_id = $1", task_id) > 0


async def test_delete_finished_task(api: Api, data_dir: Path) -> None:
    task_id = await api.create(DB_URL)
    await api.wait(task_id)
    status, _ = await api.call("DELETE", f"{BASE}/tasks/{task_id}")
    assert status == 200
    status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
    assert status == 404
    assert not (data_dir / task_id).exists()
    status, _ = await api.call("DELETE", f"{BASE}/tasks/{task_id}")
    assert status == 404


async def test_execute_one_step_again(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL)
    await api.wait(task_id)
    # The scripted steps write no .ddl files, so step 2 lacks its inputs: refused with the reason.
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "single", "single_step": 2}
    )
    assert status == 409 and body["data"]["missing_inputs"], body
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "single", "single_step": 1}
    )
    assert status == 202, body

    async def ran_again() -> list[Any] | None:
        qa = [r for r in await _executions(pg, task_id) if r["execution_step"] == "ddl_generation"]
        return qa if len(qa) == 2 and qa[-1]["status"] == "completed" else None

    qa = await eventually(ran_again, timeout=10, what="ddl_generation to run a second time")
    assert [r["status"] for r in qa] == ["completed", "completed"]
    assert len({r["execution_id"] for r in qa}) == 2
    detail = await api.wait(task_id)
    assert detail["status"] == "completed"
