"""Issue #10 item 10 in the browser: the task search finds a task by its id (whole or a fragment), its
name and its database name, and the list's filters live in the URL (a reload or a shared link shows the
same list).

The server's `q` (GET /tasks) matches the id, the name, the database name and the context; before, it
looked only at the name and the context (reproduced on the UI before the fix).
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi
from tests.e2e.conftest import DB_URL
from tests.support.api import Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_search_finds_a_task_id_and_a_database_name(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    wanted = await api.create(DB_URL, "plain", task_name="search target", db_name="warehouse_findme")
    other = await api.create(DB_URL, "plain", task_name="search other")
    await api.wait(wanted)
    await api.wait(other)
    page, _ = await open_ui(ui_url)
    rows = page.locator("#task-rows tr.task")
    search = page.get_by_label("Search tasks")

    await search.fill(wanted)
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", wanted)

    # A fragment of the id (its random suffix), and the task's name.
    await search.fill(wanted.rsplit("_", 1)[1])
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", wanted)
    await search.fill("search target")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", wanted)

    await search.fill("warehouse_findme")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", wanted)
    # The filters are in the URL: a reload shows the same list.
    await expect(page).to_have_url(f"{ui_url}/?q=warehouse_findme")
    await page.reload()
    await expect(search).to_have_value("warehouse_findme")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", wanted)

    await page.get_by_label("Filter by status").select_option("failed")
    await expect(page).to_have_url(f"{ui_url}/?status=failed&q=warehouse_findme")
    await expect(rows).to_have_count(0)
