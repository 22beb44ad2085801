"""Issue #10 item 3 in the browser: a table-list upload either takes effect for the next run, and the page
says so, or it is not offered.

- a task created with a table-list file: the uploaded file replaces it and the next run reads it;
- a task created with table names: step 1 always runs those names (the real step prefers
  `parameters.table_list` and rewrites table_list.txt from it), so the page offers no upload and says why.
Reproduced on the UI before the fix (no note; the upload was offered to every task).
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


async def test_a_task_with_table_names_offers_no_upload(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(DB_URL, "plain", task_name="names only", table_list=["public.orders"])
    await api.wait(task_id)
    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    await expect(page.locator("#table-list-fixed")).to_contain_text("given as names")
    await expect(page.get_by_role("button", name="Upload .txt")).to_be_hidden()
