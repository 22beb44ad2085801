"""Gateway: the earlier implementation's create, execute options, table-list-info and batch delete
(issue #14, items 1, 2, 3, 9). Before, a flat create was a 400 naming fields that were present, each
execute option a 400 `invalid_params`, and a batch delete always removed the records."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ClientFactory,
    CommandProbe,
    ReadModels,
    commands,
    gateway,
    gw_topology,
    make_gateway,
    rows,
    serve_creates,
)
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration

DEMO_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _waiting(**extra: Any) -> dict[str, Any]:
    return {
        "db_connection": "postgresql://u:***@db.example/shop",
        "business_context": "an online shop",
        "table_list_file": "table_list.txt",
        "table_list_source": "upload",
        "wait_for_execute": True,
        **extra,
    }


async def test_a_flat_create_waits_for_execute_in_file_upload_mode(
    make_gateway: ClientFactory, commands: CommandProbe, rows: ReadModels
) -> None:
    gateway = await make_gateway(connections={"demo": DEMO_URL}, default_connection="demo")
    collector = serve_creates(commands, rows)
    body = {
        "task_name": "highway",
        "db_name": "highway_db",
        "business_context": "highway service areas",
        "table_list_file": "tables.txt",
        "enable_sql_validation": True,
        "enable_llm_repair": True,
        "modify_original_file": True,
        "enable_training_data_load": True,
        "backup_vector_tables": False,
        "truncate_vector_tables": True,
    }
    data = await call(gateway, "POST", f"{API}/tasks", 201, json=body)
    (envelope,) = await collector
    task_id = data["task_id"]
    assert data["task_name"] == "highway" and data["status"] == "pending"
    assert data["file_upload_mode"] is True and data["waiting_for_execute"] is True
    assert data["next_step"] == f"{API}/tasks/{task_id}/upload-table-list"
    params: Any = envelope.payload.parameters  # type: ignore[union-attr]
    assert params.wait_for_execute is True and params.db_connection_name == "demo"
    assert params.truncate_vector_tables is True and params.db_name == "highway_db"
    assert params.table_list_file == "table_list.txt" and params.table_list is None

    # Right after the create: the task waits, so its table list is accepted; then the info shows it.
    info = await call(gateway, "GET", f"{API}/tasks/{task_id}/table-list-info", 200)
    assert info["has_file"] is False and info["table_count"] == 0
    await call(
        gateway, "POST", f"{API}/tasks/{task_id}/table-list", 200, json={"tables": "orders, customers"}
    )
    info = await call(gateway, "GET", f"{API}/tasks/{task_id}/table-list-info", 200)
    assert info["has_file"] is True and info["file_name"] == "table_list.txt"
    assert info["tables"] == ["orders", "customers"] and info["table_count"] == 2
    assert info["file_size"] == len("orders\ncustomers\n") and info["file_size_formatted"] == "17 B"


async def test_a_flat_create_takes_a_provisioned_table_list(
    make_gateway: ClientFactory, commands: CommandProbe, rows: ReadModels, tmp_path: Path
) -> None:
    lists = tmp_path / "lists"
    (lists / "highway").mkdir(parents=True)
    (lists / "highway" / "tables.txt").write_text("public.orders\npublic.customers\n")
    gateway = await make_gateway(
        connections={"demo": DEMO_URL}, default_connection="demo", table_lists_dir=str(lists)
    )
    collector = serve_creates(commands, rows)
    data = await call(gateway, "POST", f"{API}/tasks", 201, json={"table_list_file": "highway/tables.txt"})
    (envelope,) = await collector
    assert data["file_upload_mode"] is False and "next_step" not in data
    params: Any = envelope.payload.parameters  # type: ignore[union-attr]
    assert params.table_list_file == "tables.txt" and params.table_list_source == "highway/tables.txt"
    assert (
        rows.data_root / data["task_id"] / "tables.txt"
    ).read_text() == "public.orders\npublic.customers\n"
    info = await call(gateway, "GET", f"{API}/tasks/{data['task_id']}/table-list-info", 200)
    assert info["tables"] == ["public.orders", "public.customers"] and info["source"] == "file"


async def test_a_flat_create_needs_a_connection_when_the_server_has_no_default(
    gateway: TestClient, commands: CommandProbe
) -> None:
    data = await call(gateway, "POST", f"{API}/tasks", 400, json={"task_name": "x"})
    assert data["missing_params"] == ["db_connection"]
    await commands.none()


async def test_a_body_with_parameters_is_still_the_seeds_create(
    gateway: TestClient, commands: CommandProbe
) -> None:
    # The seed's rule holds for it: its missing fields are named, never read as a flat create.
    data = await call(gateway, "POST", f"{API}/tasks", 400, json={"parameters": {"db_connection": DEMO_URL}})
    assert "business_context" in data["missing_params"]
    await commands.none()


async def test_execute_starts_a_waiting_task_with_the_options(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="pending", parameters=_waiting())
    # No table list yet: 409 naming it, nothing published.
    data = await call(
        gateway, "POST", f"{API}/tasks/{task_id}/execute", 409, json={"execution_mode": "complete"}
    )
    assert any("table_list.txt" in m for m in data["missing_inputs"])
    await commands.none()
    rows.task_dir(task_id).mkdir(parents=True, exist_ok=True)
    (rows.task_dir(task_id) / "table_list.txt").write_text("orders\n")
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/execute",
        202,
        json={
            "execution_mode": "complete",
            "force_execution": True,
            "clean_existing_files": True,
            "backup_vector_tables": True,
            "truncate_vector_tables": False,
        },
    )
    assert data["execution_mode"] == "complete" and data["force"] is True
    payload: Any = (await commands.next()).payload
    assert payload.type == "execute_task" and payload.execution_mode == "complete" and payload.force is True
    assert payload.backup_vector_tables is True and payload.truncate_vector_tables is False


async def test_execute_keeps_step_name_and_mode_as_sent(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="pending", parameters=_waiting())
    rows.task_dir(task_id).mkdir(parents=True, exist_ok=True)
    (rows.task_dir(task_id) / "table_list.txt").write_text("orders\n")
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/execute",
        202,
        json={"execution_mode": "step", "step_name": "ddl_generation"},
    )
    assert (data["execution_mode"], data["step_name"], data["step"]) == (
        "step",
        "ddl_generation",
        "ddl_generation",
    )
    payload: Any = (await commands.next()).payload
    assert payload.execution_mode == "single" and payload.step == "ddl_generation"
    assert payload.backup_vector_tables is None and payload.truncate_vector_tables is None


async def test_a_pending_task_of_the_seeds_create_still_conflicts(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="pending")
    await call(gateway, "POST", f"{API}/tasks/{task_id}/execute", 409, json={"execution_mode": "complete"})
    await commands.none()


async def test_clean_existing_files_removes_the_steps_outputs_only(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed", parameters=_waiting(wait_for_execute=False))
    directory = rows.task_dir(task_id)
    directory.mkdir(parents=True, exist_ok=True)
    for name, step in [
        ("table_list.txt", "ddl_generation"),
        ("orders.ddl", "ddl_generation"),
        ("qs_shop_20250101_000000_pair.json", "qa_generation"),
        ("data_pipeline.log", None),
    ]:
        (directory / name).write_text("x")
        await rows.output(task_id, name, step_name=step)
    await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/execute",
        202,
        json={"execution_mode": "step", "step_name": "ddl_generation", "clean_existing_files": True},
    )
    await commands.next()
    assert sorted(p.name for p in directory.iterdir()) == [
        "data_pipeline.log",
        "qs_shop_20250101_000000_pair.json",
        "table_list.txt",
    ]


async def test_batch_delete_of_files_only_keeps_the_records(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    done = await rows.task(status="completed")
    running = await rows.task(status="in_progress")
    gone = "task_20200101_000000_nothere"
    for task_id in (done, running):
        rows.task_dir(task_id).mkdir(parents=True, exist_ok=True)
        (rows.task_dir(task_id) / "orders.ddl").write_text("CREATE TABLE orders ();\n")
    data = await call(
        gateway,
        "DELETE",
        f"{API}/tasks",
        200,
        json={
            "task_ids": [done, gone, running],
            "confirm": True,
            "delete_database_records": False,
            "continue_on_error": True,
        },
    )
    await commands.none()  # nothing for the scheduler: the records stay
    assert [(t["task_id"], t["deleted_files_count"]) for t in data["deleted_tasks"]] == [(done, 1)]
    assert data["deleted_tasks"][0]["database_records_deleted"] is False
    assert [(t["task_id"], t["error_code"]) for t in data["failed_tasks"]] == [
        (gone, "NOT_FOUND"),
        (running, "TASK_RUNNING"),
    ]
    assert data["summary"] == {"total_requested": 3, "successfully_deleted": 1, "failed": 2}
    assert not (rows.data_root / done).exists() and (rows.data_root / running / "orders.ddl").exists()
    detail = await call(gateway, "GET", f"{API}/tasks/{done}", 200)
    assert detail["status"] == "completed" and detail["directory_exists"] is False

    # continue_on_error false: the ids after a failure are not attempted.
    other = await rows.task(status="failed")
    rows.task_dir(other).mkdir(parents=True, exist_ok=True)
    data = await call(
        gateway,
        "DELETE",
        f"{API}/tasks",
        200,
        json={
            "task_ids": [gone, other],
            "confirm": True,
            "delete_database_records": False,
            "continue_on_error": False,
        },
    )
    assert [(t["task_id"], t["error_code"]) for t in data["failed_tasks"]] == [
        (gone, "NOT_FOUND"),
        (other, "SKIPPED"),
    ]
    assert (rows.data_root / other).exists()
