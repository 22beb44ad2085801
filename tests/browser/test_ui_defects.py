"""Defects of issue #10 reproduced in the browser (items 9, 13, 14), each a strict expected failure
until its fix; all are fixed now and these tests guard them. The phone layout (item 11) moved to
test_ui_layout.py with its fix. They use the composed stack with auth off.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi
from tests.e2e.conftest import DB_URL
from tests.support.api import Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_a_task_opens_from_the_keyboard(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(DB_URL, "keyboard", task_name="keyboard user")
    await api.wait(task_id)
    page, _ = await open_ui(ui_url)
    row = page.locator(f'#task-rows tr.task[data-id="{task_id}"]')
    await expect(row).to_be_visible()
    await row.focus()
    await expect(row).to_be_focused(timeout=2_000)  # focus is synchronous: no need to wait long
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_contain_text("keyboard user")


async def test_back_returns_to_the_previous_task(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    first = await api.create(DB_URL, "history", task_name="history first")
    second = await api.create(DB_URL, "history", task_name="history second")
    await api.wait(first)
    await api.wait(second)
    page, _ = await open_ui(ui_url)
    await page.locator(f'#task-rows tr.task[data-id="{first}"]').click()
    await expect(page).to_have_url(f"{ui_url}/#{first}")
    await page.locator(f'#task-rows tr.task[data-id="{second}"]').click()
    await expect(page).to_have_url(f"{ui_url}/#{second}")
    await page.go_back()
    await expect(page).to_have_url(f"{ui_url}/#{first}", timeout=3_000)
    await expect(page.locator("#detail-title")).to_contain_text("history first")


async def test_a_list_refresh_leaves_the_rows_it_does_not_change_in_place(
    open_ui: OpenUi, ui_url: str, api: Api
) -> None:
    """A click that lands while the list refreshes (every few seconds, and when an opened task's stream
    ends) must reach its row: CI once lost the click on a row replaced between mouse down and up."""
    first = await api.create(DB_URL, "history", task_name="refresh first")
    second = await api.create(DB_URL, "history", task_name="refresh second")
    await api.wait(first)
    await api.wait(second)
    page, probe = await open_ui(ui_url)
    row = page.locator(f'#task-rows tr.task[data-id="{second}"]')
    node = await row.element_handle()
    assert node is not None
    await page.locator(f'#task-rows tr.task[data-id="{first}"]').click()
    await expect(page).to_have_url(f"{ui_url}/#{first}")
    # The same module instance the page runs (a module URL is loaded once): one refresh, awaited.
    await page.evaluate("async () => { await (await import('/static/tasklist.js')).loadTasks(); }")
    assert await node.evaluate("(r) => r.isConnected"), "the unchanged row was replaced"
    await row.click()
    await expect(page).to_have_url(f"{ui_url}/#{second}")
    await expect(row).to_have_attribute("aria-current", "true")
    await expect(page.locator(f'#task-rows tr.task[data-id="{first}"]')).not_to_have_attribute(
        "aria-current", "true"
    )
    await probe.assert_clean(page)


async def test_a_deep_link_to_a_missing_task_offers_no_actions(open_ui: OpenUi, ui_url: str) -> None:
    page, _ = await open_ui(f"{ui_url}/#task_20000101_000000_gone00", allowed_statuses=(404,))
    await expect(page.locator("#detail-section")).to_contain_text("not found")
    for name in ("Run again", "Cancel", "Delete"):
        button = page.get_by_role("button", name=name, exact=True)
        assert not (await button.is_visible() and await button.is_enabled()), f"{name} is offered"
    await expect(page.locator("#logs")).not_to_contain_text("not found")
    # A link followed in the open page: one request says it all (no logs, files or stream are asked for).
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.evaluate("location.hash = '#task_20000101_000000_gone01'")
    await expect(page.locator("#detail-section")).to_contain_text("task_20000101_000000_gone01 was not found")
    assert len([r for r in requests if "gone01" in r]) == 1, requests
