"""Issue #9, items 1 and 2 on the composed services: a task created with its table list in one call
(multipart), and step ranges on create and execute, with the plan in the task's detail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, TERMINAL, Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e
STEPS = ["ddl_generation", "qa_generation", "sql_validation", "training_load"]


async def _executions(pg: asyncpg.Connection, task_id: str) -> list[str]:
    rows = await pg.fetch(
        "SELECT execution_step FROM data_pipeline_task_executions WHERE task_id = $1 ORDER BY id", task_id
    )
    return [r["execution_step"] for r in rows]


def _form(parameters: dict[str, Any], file_name: str, content: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("task_type", "complete_workflow")
    form.add_field("parameters", json.dumps(parameters), content_type="application/json")
    form.add_field("table_list_file", content, filename=file_name, content_type="text/plain")
    return form


def _plan(detail: dict[str, Any]) -> dict[str, tuple[bool, str | None]]:
    return {p["step"]: (p["runs"], p["reason"]) for p in detail["plan"]}


async def _rerun_finished(api: Api, pg: asyncpg.Connection, task_id: str, executions: int) -> dict[str, Any]:
    """The detail once the rerun's executions exist and the task is terminal again."""

    async def finished() -> dict[str, Any] | None:
        if len(await _executions(pg, task_id)) < executions:
            return None
        detail = await api.task(task_id)
        return detail if detail["status"] in TERMINAL else None

    result: dict[str, Any] = await eventually(finished, timeout=60, what=f"the rerun of {task_id} to finish")
    return result


def _give_step_outputs(directory: Path) -> None:
    """What the real steps 1 and 2 leave behind (the scripted ones write other names)."""
    (directory / "public_orders.ddl").write_text("CREATE TABLE public.orders (id int);\n")
    (directory / "public_orders_detail.md").write_text("# public.orders\n")
    (directory / "qs_shop_1_pair.json").write_text('[{"question": "how many?", "sql": "SELECT 1;"}]\n')


async def test_a_task_created_with_its_file_runs_step_one_on_it(
    api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    params = {"db_connection": DB_URL, "business_context": "plain", "task_name": "one call"}
    status, body = await api.call(
        "POST", f"{BASE}/tasks", data=_form(params, "tables.txt", b"public.orders\ncustomers # vip\n")
    )
    assert status in (201, 202), body
    task_id = body["data"]["task_id"]
    detail = await api.wait(task_id)
    assert detail["status"] == "completed", detail
    assert detail["parameters"]["table_list_file"] == "tables.txt"
    assert detail["parameters"]["table_list_source"] == "upload"
    assert (data_dir / task_id / "tables.txt").read_text() == "public.orders\ncustomers\n"
    # The scripted step 1 reads the file like the real one (and fails when it is not there).
    line = await pg.fetchval(
        "SELECT message FROM data_pipeline_task_logs WHERE task_id = $1 AND message LIKE 'table list %'",
        task_id,
    )
    assert line == "table list tables.txt: 2 tables (public.orders, customers)"


async def test_a_bad_file_creates_no_task(api: Api, pg: asyncpg.Connection, data_dir: Path) -> None:
    before = await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks")
    params = {"db_connection": DB_URL, "business_context": "plain"}
    for name, content, status in [
        ("tables.txt", b"\x00\x01binary", 400),
        ("tables.txt", b"", 400),
        ("../../tables.txt", b"orders\n", 400),
        ("tables.txt", b"orders\n" * 60_000, 413),
    ]:
        got, body = await api.call("POST", f"{BASE}/tasks", data=_form(params, name, content))
        assert got == status, (name, body)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks") == before
    assert not (data_dir.parent / "tables.txt").exists()


async def test_create_with_range_one_to_two(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL, from_step=1, to_step="qa_generation")
    detail = await api.wait(task_id)
    assert detail["status"] == "completed", detail
    assert await _executions(pg, task_id) == STEPS[:2]
    assert detail["step_status"] == {
        "ddl_generation": "completed",
        "qa_generation": "completed",
        "sql_validation": "skipped",
        "training_load": "skipped",
    }
    assert _plan(detail) == {
        "ddl_generation": (True, None),
        "qa_generation": (True, None),
        "sql_validation": (False, "outside the requested range: steps 1-2"),
        "training_load": (False, "outside the requested range: steps 1-2"),
    }
    assert detail["parameters"]["to_step"] == 2 and "from_step" not in detail["parameters"]


async def test_create_with_a_range_past_step_one_is_a_409(api: Api, pg: asyncpg.Connection) -> None:
    before = await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks")
    status, body = await api.call(
        "POST",
        f"{BASE}/tasks",
        json={
            "parameters": {
                "db_connection": DB_URL,
                "business_context": "plain",
                "table_list": ["public.orders"],
                "from_step": 2,
                "to_step": 3,
            }
        },
    )
    assert status == 409, body
    assert body["data"]["step"] == "qa_generation"
    assert body["data"]["missing_inputs"] == [
        "*.ddl (run ddl_generation first)",
        "*_detail.md (run ddl_generation first)",
    ]
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks") == before


@pytest.mark.parametrize(
    ("first", "last", "ran", "outside"),
    [
        (2, 3, ["qa_generation", "sql_validation"], "steps 2-3"),
        ("sql_validation", "training_data_load", ["sql_validation", "training_load"], "steps 3-4"),
        (1, 2, ["ddl_generation", "qa_generation"], "steps 1-2"),
    ],
)
async def test_execute_a_range(
    api: Api, pg: asyncpg.Connection, data_dir: Path, first: Any, last: Any, ran: list[str], outside: str
) -> None:
    task_id = await api.create(DB_URL)
    assert (await api.wait(task_id))["status"] == "completed"
    _give_step_outputs(data_dir / task_id)
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"from_step": first, "to_step": last}
    )
    assert status == 202, body
    detail = await _rerun_finished(api, pg, task_id, 4 + len(ran))
    assert await _executions(pg, task_id) == [*STEPS, *ran]
    assert detail["status"] == "completed"
    plan = _plan(detail)
    assert [s for s, (runs, _) in plan.items() if runs] == ran
    for step in set(STEPS) - set(ran):
        assert plan[step] == (False, f"outside the requested range: {outside}")
    # Steps outside the range keep what they were.
    assert all(detail["step_status"][s] == "completed" for s in STEPS)


async def test_execute_a_range_whose_inputs_are_missing_is_a_409(api: Api, pg: asyncpg.Connection) -> None:
    task_id = await api.create(DB_URL)
    assert (await api.wait(task_id))["status"] == "completed"
    # The scripted steps write no question/SQL pair files: step 3 cannot start a range.
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"from_step": 3, "to_step": 4}
    )
    assert status == 409, body
    assert body["data"]["missing_inputs"] == ["qs_*_pair.json (run qa_generation first)"]
    assert "step 3 (sql_validation) cannot run" in body["data"]["response"]
    assert await _executions(pg, task_id) == STEPS


async def test_a_disabled_step_inside_a_range_is_skipped_and_the_plan_says_why(
    api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    task_id = await api.create(DB_URL, enable_training_data_load=False)
    assert (await api.wait(task_id))["status"] == "completed"
    _give_step_outputs(data_dir / task_id)
    status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/execute", json={"from_step": 2})
    assert status == 202, body
    detail = await _rerun_finished(api, pg, task_id, 3 + 2)
    assert await _executions(pg, task_id) == [*STEPS[:3], "qa_generation", "sql_validation"]
    assert detail["step_status"]["training_load"] == "skipped"
    assert _plan(detail) == {
        "ddl_generation": (False, "outside the requested range: steps 2-4"),
        "qa_generation": (True, None),
        "sql_validation": (True, None),
        "training_load": (False, "disabled by enable_training_data_load=false"),
    }
