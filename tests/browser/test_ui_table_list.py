"""Issue #10 item 3 in the browser: a table-list upload takes effect for the next run, and the page says so.

- a task created with a table-list file: the uploaded file replaces it and the next run reads it;
- a task created with table names: its first run writes them to table_list.txt, an upload replaces that
  list and the next run of step 1 works on exactly the uploaded tables (the real step 1 on the demo
  database, as tests/e2e/test_table_list_rerun.py checks through the API).
Reproduced on the UI before the fix (no note; then, with names, the upload hidden and "every run uses
them", which stopped being true when step 1 began reading an existing table_list.txt).
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_an_uploaded_table_list_is_used_by_the_next_run(
    open_ui: OpenUi, ui_url: str, api: Api, tmp_path: Path
) -> None:
    form = aiohttp.FormData()
    parameters = {"db_connection": DB_URL, "business_context": "plain", "task_name": "upload then rerun"}
    form.add_field("parameters", json.dumps(parameters), content_type="application/json")
    form.add_field("table_list_file", b"public.orders\n", filename="first.txt", content_type="text/plain")
    status, body = await api.call("POST", f"{BASE}/tasks", data=form)
    assert status in (201, 202), body
    task_id = body["data"]["task_id"]
    assert (await api.wait(task_id))["status"] == "completed"
    listed = tmp_path / "next_tables.txt"
    listed.write_text("public.alpha\npublic.beta\n", encoding="utf-8")
    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    await expect(page.locator("#logs")).to_contain_text("1 tables (public.orders)")
    await page.get_by_label("Table list file (.txt)").set_input_files(str(listed))
    await page.get_by_role("button", name="Upload .txt").click()
    note = page.locator("#table-list-note")
    await expect(note).to_contain_text("2 tables")
    await expect(note).to_contain_text("next run")

    await page.get_by_role("button", name="Run again").click()
    await expect(page.locator("#logs")).to_contain_text(
        "2 tables (public.alpha, public.beta)", timeout=30_000
    )
    await expect(page.locator("#detail-title .status")).to_have_text("completed", timeout=30_000)


async def test_an_upload_on_a_task_created_with_names_is_what_step_1_runs_next(
    open_ui: OpenUi,
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    task_id = await real_api.create(
        demo_db_url,
        business_context="An online retail shop",
        task_name="names then upload",
        table_list=["public.orders", "public.stores", "public.products"],
        db_name="shop",
        execution_mode="single",
        single_step=1,
    )
    assert (await real_api.wait(task_id, timeout=120))["status"] == "completed"
    task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
    assert {p.stem for p in task_dir.glob("*.ddl")} == {"orders", "stores", "products"}
    listed = tmp_path / "two.txt"
    listed.write_text("customers\npublic.categories\n", encoding="utf-8")

    page, _ = await open_ui(f"{real_api.url}/#{task_id}")
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    await expect(page.locator("#logs")).to_contain_text("introspecting 3 tables of shop")
    # The page says where the tables come from and that an upload replaces them for the next run.
    source = page.locator("#table-list-source")
    await expect(source).to_contain_text("Created with 3 table name(s)")
    await expect(source).to_contain_text("the next run uses the uploaded tables")
    await page.get_by_label("Table list file (.txt)").set_input_files(str(listed))
    await page.get_by_role("button", name="Upload .txt").click()
    note = page.locator("#table-list-note")
    await expect(note).to_contain_text("table_list.txt: 2 tables (customers, public.categories)")
    await expect(note).to_contain_text("next run")

    await page.get_by_role("button", name="run step 1 ddl_generation").click()
    await expect(page.locator("#logs")).to_contain_text("introspecting 2 tables of shop", timeout=60_000)
    await expect(page.locator("#detail-title .status")).to_have_text("completed", timeout=60_000)

    async def second_run_on_two_tables() -> bool:
        status, body = await real_api.call(
            "GET", f"{BASE}/tasks/{task_id}/logs", params={"step": "ddl_generation", "q": "introspecting"}
        )
        assert status == 200, body
        assert len(body["data"]["logs"]) == 2, body["data"]["logs"]
        assert {p.stem for p in task_dir.glob("*.ddl")} == {"customers", "categories"}
        return True

    await eventually(second_run_on_two_tables, timeout=30, what="step 1 on the 2 uploaded tables")
