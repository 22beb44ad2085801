"""The business-database password never appears in clear text: responses, rows, events, files, logs."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.e2e.conftest import DB_URL, SECRET
from tests.support.api import BASE, Api
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_password_is_never_in_clear_text(
    api: Api, pg: asyncpg.Connection, stack: Stack, data_dir: Path
) -> None:
    done = await api.create(DB_URL, task_name="secret check")
    failed = await api.create(DB_URL, business_context="fail:ddl_generation")
    for task_id in (done, failed):
        await api.wait(task_id)

    bodies: list[str] = []
    for task_id in (done, failed):
        for path in ("", "/logs?limit=1000", "/events?limit=1000", "/files"):
            status, body = await api.call("GET", f"{BASE}/tasks/{task_id}{path}")
            assert status == 200, (path, body)
            bodies.append(str(body))
    status, body = await api.call("GET", f"{BASE}/tasks?limit=100")
    bodies.append(str(body))
    detail = await api.task(done)
    assert detail["parameters"]["db_connection"] == "postgresql://pipeline_user:***@127.0.0.1:5432/business"
    assert all(SECRET not in b for b in bodies)

    for table in (
        "data_pipeline_events",
        "data_pipeline_tasks",
        "data_pipeline_task_logs",
        "data_pipeline_task_executions",
        "data_pipeline_task_outputs",
    ):
        hits = await pg.fetchval(
            f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'", SECRET
        )
        assert hits == 0, table
    # The masked form did reach the logs: the scripted executor logged the connection URL.
    assert (
        await pg.fetchval(
            "SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1 AND message LIKE '%:***@%'", done
        )
        == 4
    )

    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != ".encryption_key":
            assert SECRET.encode() not in path.read_bytes(), path
    for name in ("gateway", "scheduler", "collector", "runner-a", "runner-b"):
        assert SECRET not in stack.logs(name), name
