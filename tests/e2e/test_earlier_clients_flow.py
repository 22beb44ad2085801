"""The earlier implementation's documented call sequences, replayed unchanged against the real stack with
the REAL steps on the demo database (issue #14: items 1, 2, 3, 9, 10).

The stack has a default connection (DP_DEFAULT_CONNECTION naming the demo database among
DP_CONNECTIONS), as the earlier implementation took its connection from its configuration.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, TERMINAL, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import demo_tables, real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


@pytest.fixture(scope="module", autouse=True)
def _default_connection(real_env: dict[str, str], demo_db_url: str) -> None:  # noqa: F811
    # Autouse: runs before real_stack reads the environment for its services.
    real_env["DP_CONNECTIONS"] = json.dumps({"demo": demo_db_url})
    real_env["DP_DEFAULT_CONNECTION"] = "demo"


async def _flat_create(api: Api, **fields: Any) -> dict[str, Any]:
    status, body = await api.call("POST", f"{BASE}/tasks", json=fields)
    assert status == 201, body
    assert body["code"] == 201 and body["success"] is True
    data = body["data"]
    assert data["status"] == "pending" and data["task_id"].startswith("task_")
    assert data["created_at"].endswith(("Z", "+00:00"))  # ISO 8601 with an offset (docs/migrating.md)
    return data


async def _store_rows(env: dict[str, str], db_name: str) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        return await conn.fetchval(
            f"SELECT count(DISTINCT data_id) FROM {env['DP_TRAINING_SCHEMA']}.training_data_sources"
            " WHERE db_name = $1",
            db_name,
        )
    finally:
        await conn.close()


def _runs(detail: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return next(s for s in detail["steps"] if s["step"] == step)["executions"]


def _last_result(detail: dict[str, Any], step: str) -> dict[str, Any]:
    return _runs(detail, step)[-1]["result"] or {}


async def _wait_new_run(
    api: Api, task_id: str, step: str, before: int, timeout: float = 240
) -> dict[str, Any]:
    """The task's detail once a run of `step` after the `before` earlier ones is over and the task too."""

    async def ended() -> dict[str, Any]:
        detail = await api.task(task_id)
        assert len(_runs(detail, step)) > before and detail["status"] in TERMINAL, detail.get("step_status")
        return detail

    return await eventually(ended, timeout=timeout, interval=0.2, what=f"a new run of {step} to end")


async def test_flat_create_upload_execute_complete_then_delete_files_only(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
) -> None:
    tables = demo_tables()
    created = await _flat_create(
        real_api,
        task_name="earlier client",
        business_context="An online retail shop",
        db_name="shop",
        enable_sql_validation=True,
        enable_llm_repair=True,
        modify_original_file=True,
        enable_training_data_load=True,
    )
    task_id = created["task_id"]
    assert created["task_name"] == "earlier client"
    assert created["file_upload_mode"] is True
    assert created["next_step"] == f"{BASE}/tasks/{task_id}/upload-table-list"

    # The task waits: right after the create the table list is accepted, every time.
    status, info = await real_api.call("GET", f"{BASE}/tasks/{task_id}/table-list-info")
    assert status == 200 and info["data"]["has_file"] is False, info
    form = aiohttp.FormData()
    form.add_field("file", "\n".join(tables) + "\n", filename="tables.txt", content_type="text/plain")
    status, body = await real_api.call("POST", f"{BASE}/tasks/{task_id}/upload-table-list", data=form)
    assert status == 200, body
    status, info = await real_api.call("GET", f"{BASE}/tasks/{task_id}/table-list-info")
    assert status == 200, info
    assert info["data"]["has_file"] is True and info["data"]["table_count"] == len(tables)
    assert info["data"]["tables"] == tables and info["data"]["file_size"] > 0

    detail = await real_api.task(task_id)
    assert detail["status"] == "pending" and detail["started_at"] is None

    status, body = await real_api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/execute",
        json={
            "execution_mode": "complete",
            "force_execution": False,
            "clean_existing_files": True,
            "backup_vector_tables": True,
            "truncate_vector_tables": True,
        },
    )
    assert status == 202, body
    assert body["data"]["execution_mode"] == "complete" and body["data"]["task_id"] == task_id

    detail = await real_api.wait(task_id, timeout=300)
    assert detail["status"] == "completed", detail
    assert detail["parameters"].get("wait_for_execute") is False
    load = _last_result(detail, "training_load")
    assert load["backed_up_rows"] == 0 and load["backup_file"].startswith("training_backup_shop_")
    loaded = await _store_rows(real_env, "shop")
    assert loaded > len(tables)

    status, logs = await real_api.call("GET", f"{BASE}/tasks/{task_id}/logs?limit=50")
    assert status == 200 and logs["data"]["logs"], logs

    status, files = await real_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, files
    names = {f["file_name"] for f in files["data"]["files"]}
    assert load["backup_file"] in names
    pair = next(n for n in names if n.startswith("qs_shop_") and n.endswith("_pair.json"))
    async with real_api.session.get(f"{real_api.url}{BASE}/tasks/{task_id}/files/download/{pair}") as resp:
        assert resp.status == 200
        assert json.loads(await resp.read())

    # A re-run of the load with both options: the backup holds the rows, the truncate removes them
    # before the load puts the task's items back.
    status, body = await real_api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/execute",
        json={
            "execution_mode": "step",
            "step_name": "training_load",
            "backup_vector_tables": True,
            "truncate_vector_tables": True,
        },
    )
    assert status == 202, body
    assert body["data"]["execution_mode"] == "step" and body["data"]["step_name"] == "training_load"
    detail = await _wait_new_run(real_api, task_id, "training_load", before=1)
    assert detail["status"] == "completed", detail
    load = _last_result(detail, "training_load")
    assert load["backed_up_rows"] == loaded, load
    assert sum(load["truncated"]["deleted"].values()) == loaded
    assert await _store_rows(real_env, "shop") == loaded

    # Batch delete with the earlier options: files go, records stay; an id already gone is one entry.
    gone = "task_20200101_000000_nothere"
    status, body = await real_api.call(
        "DELETE",
        f"{BASE}/tasks",
        json={
            "task_ids": [task_id, gone],
            "confirm": True,
            "delete_database_records": False,
            "continue_on_error": True,
        },
    )
    assert status == 200, body
    data = body["data"]
    assert [t["task_id"] for t in data["deleted_tasks"]] == [task_id]
    assert data["deleted_tasks"][0]["database_records_deleted"] is False
    assert data["deleted_tasks"][0]["deleted_files_count"] > len(tables)
    assert [(t["task_id"], t["error_code"]) for t in data["failed_tasks"]] == [(gone, "NOT_FOUND")]
    assert data["summary"] == {"total_requested": 2, "successfully_deleted": 1, "failed": 1}
    assert {r["task_id"]: r["status"] for r in data["results"]} == {
        task_id: "files_deleted",
        gone: "not_found",
    }
    detail = await real_api.task(task_id)
    assert detail["status"] == "completed" and detail["directory_exists"] is False


async def test_flat_create_table_list_then_each_step_by_name(
    real_api: Api,  # noqa: F811
) -> None:
    tables = demo_tables()
    created = await _flat_create(
        real_api, task_name="step by step", business_context="An online retail shop", db_connection="demo"
    )
    task_id = created["task_id"]
    status, body = await real_api.call(
        "POST", f"{BASE}/tasks/{task_id}/table-list", json={"tables": ",".join(tables)}
    )
    assert status == 200, body

    for number, step in enumerate(STEPS, start=1):
        status, body = await real_api.call(
            "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "step", "step_name": step}
        )
        assert status == 202, (step, body)
        assert body["data"]["execution_mode"] == "step" and body["data"]["step_name"] == step
        detail = await _wait_new_run(real_api, task_id, step, before=0)
        assert detail["status"] == "completed", (step, detail)
        assert [s for s in STEPS[:number] if detail["step_status"][s] != "completed"] == []

    # A re-run of step 2 leaves one pair file, registered once as primary.
    status, body = await real_api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/execute",
        json={"execution_mode": "step", "step_name": "qa_generation"},
    )
    assert status == 202, body
    first_pairs = await _pair_files(real_api, task_id)
    detail = await _wait_new_run(real_api, task_id, "qa_generation", before=1)
    assert detail["status"] == "completed", detail
    pairs = await _pair_files(real_api, task_id)
    assert len(pairs) == 1 and pairs[0]["is_primary"], pairs
    assert [p["file_name"] for p in pairs] == [p["file_name"] for p in first_pairs]


async def _pair_files(api: Api, task_id: str) -> list[dict[str, Any]]:
    status, files = await api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, files
    return [
        f
        for f in files["data"]["files"]
        if f["file_name"].startswith("qs_") and f["file_name"].endswith("_pair.json")
    ]
