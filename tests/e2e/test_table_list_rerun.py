"""Issue #10 defect 3, server side: a task created with table names takes an uploaded table list on its
next run. On the previous main the real step 1 rewrote table_list.txt from the creation names, so the
upload was silently overwritten and step 1 introspected the old tables."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


async def test_an_upload_on_a_name_based_task_takes_effect_on_the_next_run(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    task_id = await real_api.create(
        demo_db_url,
        business_context="An online retail shop",
        table_list=["public.orders", "public.stores", "public.products"],
        db_name="shop",
        execution_mode="single",
        single_step=1,
    )
    first = await real_api.wait(task_id, timeout=120)
    assert first["status"] == "completed", first
    task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
    assert {p.stem for p in task_dir.glob("*.ddl")} == {"orders", "stores", "products"}

    form = aiohttp.FormData()
    form.add_field("file", b"customers\npublic.categories\n", filename="two.txt", content_type="text/plain")
    status, body = await real_api.call("POST", f"{BASE}/tasks/{task_id}/upload-table-list", data=form)
    assert status == 200, body
    assert body["data"]["file_name"] == "table_list.txt" and body["data"]["table_count"] == 2

    status, body = await real_api.call("POST", f"{BASE}/tasks/{task_id}/execute", json={"single_step": 1})
    assert status in (200, 202), body

    async def second_run_finished() -> list[str]:
        status, body = await real_api.call(
            "GET", f"{BASE}/tasks/{task_id}/logs", params={"step": "ddl_generation", "q": "introspecting"}
        )
        assert status == 200, body
        lines = [line["message"] for line in body["data"]["logs"]]
        assert len(lines) == 2, lines
        assert (await real_api.task(task_id))["status"] == "completed"
        return lines

    introspecting = await eventually(second_run_finished, timeout=120, what="the second run of step 1")
    assert introspecting[-1].startswith("introspecting 2 tables of shop"), introspecting
    catalog = json.loads((task_dir / "schema_catalog.json").read_text())
    assert [t["name"] for t in catalog["tables"]] == ["customers", "categories"]
    assert {p.stem for p in task_dir.glob("*.ddl")} == {"customers", "categories"}
