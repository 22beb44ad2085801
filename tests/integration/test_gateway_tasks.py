"""Gateway: creating tasks (validation, publishing, waiting for the read model) and reading them."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from shared.secrets import SecretBox, load_or_create_key
from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    CommandProbe,
    ReadModels,
    ago,
    commands,
    gateway,
    gw_topology,
    make_gateway,
    rows,
    serve_creates,
)

pytestmark = pytest.mark.integration

URL = "postgresql://u:S3cretPw@db.example:5432/shop"


def body(**parameters: Any) -> dict[str, Any]:
    base = {
        "db_connection": URL,
        "table_list": ["public.orders", "customers"],
        "business_context": "an online shop",
    }
    base.update(parameters)
    return {"task_type": "complete_workflow", "parameters": {k: v for k, v in base.items() if v is not ...}}


def assert_envelope(payload: dict[str, Any], status: int) -> dict[str, Any]:
    assert set(payload) == {"code", "success", "message", "data"}
    assert payload["code"] == status
    assert payload["success"] is (status < 400)
    assert isinstance(payload["message"], str) and payload["message"]
    data = payload["data"]
    assert isinstance(data["response"], str) and data["response"]
    assert "T" in data["timestamp"] and (
        data["timestamp"].endswith("+00:00") or data["timestamp"].endswith("Z")
    )
    return data


async def call(client: TestClient, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    resp = await client.request(method, path, **kwargs)
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json"
    return assert_envelope(json.loads(text), status)


async def test_create_publishes_command_and_waits_for_the_row(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels, test_env: dict[str, str]
) -> None:
    collector = serve_creates(commands, rows)
    data = await call(
        gateway, "POST", f"{API}/tasks", 201, json=body(task_name="nightly", enable_llm_repair=False)
    )
    [command] = await collector
    assert data["task_id"] == command.task_id
    assert data["task_id"].startswith("task_") and len(data["task_id"]) <= 32
    assert data["status"] == "pending"
    assert data["created_at"]
    assert data["output_directory"].endswith(data["task_id"]) and data["output_directory"].startswith("/")
    params = command.payload.parameters  # type: ignore[union-attr]
    assert params.db_connection == "postgresql://u:***@db.example:5432/shop"
    assert "S3cretPw" not in params.model_dump_json(exclude={"db_connection_secret"})
    box = SecretBox(load_or_create_key(test_env["DP_ENCRYPTION_KEY"], rows.data_root))
    assert box.decrypt(params.db_connection_secret) == URL
    assert params.db_name == "shop" and params.task_name == "nightly" and params.enable_llm_repair is False
    assert params.table_list == ["public.orders", "customers"]
    assert command.producer == "api_gateway"


async def test_create_with_a_named_connection(
    make_gateway: Any, commands: CommandProbe, rows: ReadModels
) -> None:
    client = await make_gateway(connections={"shop": "postgresql://svc:Hidden9@db.internal/shopdb"})
    collector = serve_creates(commands, rows)
    await call(client, "POST", f"{API}/tasks", 201, json=body(db_connection="shop"))
    [command] = await collector
    params = command.payload.parameters  # type: ignore[union-attr]
    assert params.db_connection_name == "shop"
    assert params.db_connection_secret is None
    assert params.db_connection == "postgresql://svc:***@db.internal/shopdb"
    assert params.db_name == "shopdb"


async def test_create_answers_202_when_the_read_model_lags(make_gateway: Any, commands: CommandProbe) -> None:
    client = await make_gateway(create_visibility_timeout_seconds=0.2)
    data = await call(client, "POST", f"{API}/tasks", 202, json=body())
    assert data["status"] == "pending"
    assert (await commands.next()).task_id == data["task_id"]


@pytest.mark.parametrize(
    ("parameters", "missing"),
    [
        ({"db_connection": ...}, ["db_connection"]),
        ({"business_context": "  "}, ["business_context"]),
        ({"table_list": ...}, ["table_list_file"]),
        ({"table_list": []}, ["table_list_file"]),
        (
            {"db_connection": "", "business_context": None, "table_list": ...},
            ["db_connection", "table_list_file", "business_context"],
        ),
        ({"execution_mode": "single"}, ["single_step"]),
    ],
)
async def test_create_names_missing_parameters(
    gateway: TestClient, commands: CommandProbe, parameters: dict[str, Any], missing: list[str]
) -> None:
    data = await call(gateway, "POST", f"{API}/tasks", 400, json=body(**parameters))
    assert data["error_type"] == "missing_required_params"
    assert data["missing_params"] == missing
    await commands.none()


async def test_create_without_parameters_object(gateway: TestClient) -> None:
    data = await call(gateway, "POST", f"{API}/tasks", 400, json={"task_type": "complete_workflow"})
    assert data["missing_params"] == ["db_connection", "table_list_file", "business_context"]


@pytest.mark.parametrize(
    ("parameters", "invalid"),
    [
        ({"enable_sql_validation": "false"}, ["enable_sql_validation"]),
        ({"enable_training_data_load": 1}, ["enable_training_data_load"]),
        ({"modify_original_file": None}, ["modify_original_file"]),
        ({"execution_mode": "partial"}, ["execution_mode"]),
        ({"execution_mode": "single", "single_step": 5}, ["single_step"]),
        ({"execution_mode": "single", "single_step": "2"}, ["single_step"]),
        ({"execution_mode": "single", "single_step": True}, ["single_step"]),
        ({"single_step": 2}, ["single_step"]),
        ({"table_list": ["orders; drop table x"]}, ["table_list"]),
        ({"table_list": "orders"}, ["table_list"]),
        ({"table_list": ..., "table_list_file": "../etc/passwd"}, ["table_list_file"]),
        ({"table_list": ..., "table_list_file": "/etc/passwd"}, ["table_list_file"]),
        ({"table_list": ..., "table_list_file": ".hidden.txt"}, ["table_list_file"]),
        ({"table_list_file": "tables.txt"}, ["table_list", "table_list_file"]),
        ({"db_connection": "mysql://u:p@h/db"}, ["db_connection"]),
        ({"db_connection": "postgresql://u:S3cretPw@/db"}, ["db_connection"]),
        ({"db_connection": "no_such_connection"}, ["db_connection"]),
        ({"unexpected": 1}, ["unexpected"]),
        ({"task_name": "x" * 201}, ["task_name"]),
    ],
)
async def test_create_names_invalid_parameters(
    gateway: TestClient, commands: CommandProbe, parameters: dict[str, Any], invalid: list[str]
) -> None:
    resp = await gateway.post(f"{API}/tasks", json=body(**parameters))
    text = await resp.text()
    assert resp.status == 400, text
    data = assert_envelope(json.loads(text), 400)
    assert data["error_type"] == "invalid_params"
    assert data["invalid_params"] == invalid
    assert "S3cretPw" not in text
    await commands.none()


async def test_create_with_table_list_file_and_optional_fields(
    make_gateway: Any, commands: CommandProbe, rows: ReadModels, tmp_path: Path
) -> None:
    # table_list_file names a file under DP_TABLE_LISTS_DIR (tests/integration/test_gateway_table_lists.py).
    (tmp_path / "tables.txt").write_text("public.orders\n")
    gateway = await make_gateway(table_lists_dir=str(tmp_path))
    collector = serve_creates(commands, rows)
    await call(
        gateway,
        "POST",
        f"{API}/tasks",
        201,
        json=body(
            table_list=...,
            table_list_file="tables.txt",
            execution_mode="single",
            single_step=1,
            db_name="other_db",
            output_dir="./ignored",
        ),
    )
    [command] = await collector
    params = command.payload.parameters  # type: ignore[union-attr]
    assert params.table_list_file == "tables.txt" and params.single_step == 1 and params.db_name == "other_db"


async def test_create_rejects_bad_bodies(gateway: TestClient) -> None:
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks",
        400,
        data=b'{"parameters": {',
        headers={"Content-Type": "application/json"},
    )
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["body"]
    data = await call(gateway, "POST", f"{API}/tasks", 400, json=["not", "an", "object"])
    assert data["invalid_params"] == ["body"]
    data = await call(
        gateway, "POST", f"{API}/tasks", 415, data="db_connection=x", headers={"Content-Type": "text/plain"}
    )
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["content_type"]
    data = await call(gateway, "POST", f"{API}/tasks", 400, json={**body(), "task_type": "other"})
    assert data["invalid_params"] == ["task_type"]
    data = await call(gateway, "POST", f"{API}/tasks", 400, json={**body(), "parameters": "x"})
    assert data["invalid_params"] == ["parameters"]


async def test_create_rejects_an_oversized_body(make_gateway: Any) -> None:
    client = await make_gateway(max_body_bytes=4096)
    data = await call(client, "POST", f"{API}/tasks", 413, json=body(business_context="x" * 10_000))
    assert data["error_type"] == "payload_too_large"


async def test_list_pages_by_keyset_with_total(gateway: TestClient, rows: ReadModels) -> None:
    marker = f"db_{rows.new_id()[-6:]}"
    ids = [await rows.task(created_at=ago(100 - i), db_name=marker) for i in range(5)]
    # Two tasks in the same instant: the id breaks the tie, nothing is skipped or repeated.
    same = ago(10)
    ids += [await rows.task(created_at=same, db_name=marker) for _ in range(2)]
    expected = sorted(ids[5:], reverse=True) + list(reversed(ids[:5]))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", "db_name": marker, **({"cursor": cursor} if cursor else {})}
        data = await call(gateway, "GET", f"{API}/tasks", 200, params=params)
        assert data["total"] == 7
        seen += [t["task_id"] for t in data["tasks"]]
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 3


async def test_list_filters(gateway: TestClient, rows: ReadModels) -> None:
    marker = f"db_{rows.new_id()[-6:]}"
    done = await rows.task(
        status="completed", db_name=marker, task_name="weekly 100%_report", created_by="manual"
    )
    await rows.task(status="failed", db_name=marker, task_name="weekly 100x report")
    data = await call(gateway, "GET", f"{API}/tasks", 200, params={"db_name": marker, "status": "completed"})
    assert [t["task_id"] for t in data["tasks"]] == [done]
    data = await call(gateway, "GET", f"{API}/tasks", 200, params={"db_name": marker, "search": "100%_"})
    assert [t["task_id"] for t in data["tasks"]] == [done]
    data = await call(gateway, "GET", f"{API}/tasks", 200, params={"db_name": marker, "created_by": "manual"})
    assert data["total"] == 1
    data = await call(
        gateway, "GET", f"{API}/tasks", 200, params={"db_name": marker, "status": "failed,completed"}
    )
    assert data["total"] == 2
    summary = data["tasks"][0]
    assert summary["parameters"]["db_connection"] == "postgresql://u:***@db.example/shop"


@pytest.mark.parametrize(
    ("params", "invalid"),
    [
        ({"limit": "0"}, ["limit"]),
        ({"limit": "101"}, ["limit"]),
        ({"limit": "ten"}, ["limit"]),
        ({"status": "runing"}, ["status"]),  # `running` is the seed's in_progress
        ({"cursor": "garbage!"}, ["cursor"]),
        ({"cursor": "eyJrIjoibG9ncyIsInYiOjF9"}, ["cursor"]),  # a log cursor is not a task cursor
    ],
)
async def test_list_rejects_bad_query(
    gateway: TestClient, params: dict[str, str], invalid: list[str]
) -> None:
    data = await call(gateway, "GET", f"{API}/tasks", 400, params=params)
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == invalid


async def test_detail_builds_steps_from_status_and_executions(gateway: TestClient, rows: ReadModels) -> None:
    start = ago(120)
    task_id = await rows.task(
        status="in_progress",
        started_at=start,
        progress=40,
        current_step="qa_generation",
        step_status={
            "ddl_generation": "completed",
            "qa_generation": "running",
            "sql_validation": "pending",
            "training_load": "pending",
        },
        error_message=f"retrying after {URL} refused",
    )
    await rows.execution(
        task_id,
        "ddl_generation",
        status="failed",
        started_at=start,
        completed_at=start + timedelta(seconds=5),
        error_message="timeout",
    )
    await rows.execution(
        task_id,
        "ddl_generation",
        status="completed",
        attempt=2,
        started_at=start + timedelta(seconds=10),
        completed_at=start + timedelta(seconds=40),
    )
    await rows.execution(task_id, "qa_generation", status="running", started_at=start + timedelta(seconds=50))
    resp = await gateway.get(f"{API}/tasks/{task_id}")
    text = await resp.text()
    assert "S3cretPw" not in text
    data = assert_envelope(json.loads(text), 200)
    assert data["task_id"] == task_id and data["status"] == "in_progress" and data["progress"] == 40
    assert data["current_step"] == "qa_generation"
    assert data["duration"] >= 119
    steps = {s["step"]: s for s in data["steps"]}
    assert [s["step"] for s in data["steps"]] == [
        "ddl_generation",
        "qa_generation",
        "sql_validation",
        "training_load",
    ]
    assert steps["ddl_generation"]["status"] == "completed"
    assert steps["ddl_generation"]["attempts"] == 2
    assert steps["ddl_generation"]["duration"] == 30
    assert steps["ddl_generation"]["error_message"] is None
    assert [e["status"] for e in steps["ddl_generation"]["executions"]] == ["failed", "completed"]
    assert steps["qa_generation"]["status"] == "running" and steps["qa_generation"]["completed_at"] is None
    assert steps["sql_validation"]["attempts"] == 0 and steps["sql_validation"]["executions"] == []
    assert data["step_details"] == data["steps"]
    assert data["error_message"] == "retrying after postgresql://u:***@db.example:5432/shop refused"


async def test_detail_unknown_and_invalid_ids(gateway: TestClient) -> None:
    data = await call(gateway, "GET", f"{API}/tasks/task_20200101_000000_zzzzzz", 404)
    assert data["error_type"] == "resource_not_found"
    for bad in ("task_x", "robert'); drop table", "task_20200101_000000_" + "a" * 20, "..%2f..%2fetc"):
        data = await call(gateway, "GET", f"{API}/tasks/{bad}", 400)
        assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["task_id"]


async def test_active_shows_running_tasks_else_the_latest(gateway: TestClient, rows: ReadModels) -> None:
    running = await rows.task(status="in_progress", started_at=ago(5))
    data = await call(gateway, "GET", f"{API}/tasks/active", 200)
    assert data["active"] is True and running in [t["task_id"] for t in data["tasks"]]
    await rows.delete_task(running)
    await rows.pg.execute("UPDATE data_pipeline_tasks SET status = 'completed' WHERE status = 'in_progress'")
    latest = await rows.task(status="completed")
    data = await call(gateway, "GET", f"{API}/tasks/active", 200)
    assert data["active"] is False and data["task"]["task_id"] == latest
