"""Table-list files named or sent at creation (issue #9, item 1) cannot reach outside their places.

A gateway with DP_TABLE_LISTS_DIR joins the composed stack (its scheduler, collector and scripted
runners). Names that climb out (`../`, absolute paths, links out of the directory, hidden names,
encoded dots) are refused with a 400 before any task exists, and nothing of the file they aim at shows
in the answer; a multipart create cannot place its file anywhere but its own task directory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.api import BASE, Api
from tests.support.composed_stack import DB_URL, _wait_ready
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
SECRET_TABLE = "stolen_payroll"


@pytest.fixture(scope="module")
def lists_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("operator")
    root = base / "lists"
    (root / "sales").mkdir(parents=True)
    (root / "sales" / "q3.txt").write_text("public.orders\ncustomers\n")
    outside = base / "secret.txt"
    outside.write_text(f"{SECRET_TABLE}\n")
    (root / "link_out.txt").symlink_to(outside)
    (root / "up").symlink_to(base)
    (root / "abs_link.txt").symlink_to("/etc/hostname")
    return root


@pytest.fixture(scope="module")
def lists_gateway(stack: Stack, lists_dir: Path) -> Iterator[str]:
    port = free_port()
    stack.start(
        "gateway-lists",
        kind="gateway",
        extra_env={"DP_HTTP_PORT": str(port), "DP_TABLE_LISTS_DIR": str(lists_dir)},
    )
    url = f"http://127.0.0.1:{port}"
    asyncio.run(_wait_ready(url, stack, name="gateway-lists"))
    yield url
    stack.stop("gateway-lists")


@pytest.fixture
async def lists_api(lists_gateway: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, lists_gateway)


def _parameters(**extra: Any) -> dict[str, Any]:
    return {"db_connection": DB_URL, "business_context": "plain", **extra}


async def _task_count(pg: asyncpg.Connection) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../secret.txt", None),
        ("sales/../../secret.txt", None),
        ("/etc/hostname", None),
        ("..\\secret.txt", None),
        ("%2e%2e/secret.txt", None),
        (".hidden.txt", None),
        ("sales/./q3.txt", None),
        ("link_out.txt", "leads outside DP_TABLE_LISTS_DIR"),
        ("up/secret.txt", "leads outside DP_TABLE_LISTS_DIR"),
        ("abs_link.txt", "leads outside DP_TABLE_LISTS_DIR"),
        ("secret.txt", "no such readable file"),
    ],
)
async def test_a_named_file_cannot_leave_the_directory(
    lists_api: Api, pg: asyncpg.Connection, name: str, reason: str | None
) -> None:
    before = await _task_count(pg)
    status, body = await lists_api.call(
        "POST", f"{BASE}/tasks", json={"parameters": _parameters(table_list_file=name)}
    )
    assert status == 400, body
    assert body["data"]["invalid_params"] == ["table_list_file"]
    if reason is not None:  # else refused by the document's pattern or the server's own check
        assert reason in body["data"]["response"]
    assert SECRET_TABLE not in json.dumps(body)
    assert await _task_count(pg) == before


async def test_a_named_file_inside_is_copied_and_read_by_step_one(
    lists_api: Api, pg: asyncpg.Connection, data_dir: Path
) -> None:
    status, body = await lists_api.call(
        "POST", f"{BASE}/tasks", json={"parameters": _parameters(table_list_file="sales/q3.txt")}
    )
    assert status in (201, 202), body
    task_id = body["data"]["task_id"]
    detail = await lists_api.wait(task_id)
    assert detail["status"] == "completed", detail
    assert detail["parameters"]["table_list_source"] == "sales/q3.txt"
    assert (data_dir / task_id / "q3.txt").read_text() == "public.orders\ncustomers\n"
    line = await pg.fetchval(
        "SELECT message FROM data_pipeline_task_logs WHERE task_id = $1 AND message LIKE 'table list %'",
        task_id,
    )
    assert line == "table list q3.txt: 2 tables (public.orders, customers)"


@pytest.mark.parametrize(
    "file_name",
    ["../../escaped.txt", "/tmp/escaped.txt", "..\\escaped.txt", "sub/escaped.txt", ".escaped.txt"],
)
async def test_an_uploaded_file_lands_in_its_task_directory_or_nowhere(
    lists_api: Api, pg: asyncpg.Connection, data_dir: Path, file_name: str
) -> None:
    before = await _task_count(pg)
    form = aiohttp.FormData()
    form.add_field("parameters", json.dumps(_parameters()), content_type="application/json")
    form.add_field("table_list_file", b"public.orders\n", filename=file_name, content_type="text/plain")
    status, body = await lists_api.call("POST", f"{BASE}/tasks", data=form)
    assert status == 400, body
    assert body["data"]["invalid_params"] == ["table_list_file"]
    assert await _task_count(pg) == before
    assert not list(data_dir.parent.rglob("escaped.txt"))
    assert not Path("/tmp/escaped.txt").exists()
