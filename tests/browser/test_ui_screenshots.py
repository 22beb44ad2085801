"""The main views at desktop (1366x900) and phone (390x844) size, as `make screenshots` commits them under
docs/ui/ (linked from the README). In the ordinary run the pictures go to a temporary directory; the test
still checks that each view is the one pictured (and that a phone never scrolls sideways), so a broken
view fails here too. The training-data page and a file preview are pictured by test_ui_outputs.py (real
steps), which `make screenshots` runs as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi, open_event_history
from tests.browser.test_ui_layout import _OVERFLOWS
from tests.e2e.conftest import DB_URL
from tests.support.api import Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"width": 390, "height": 844}


async def test_main_views_at_desktop_and_phone_size(
    open_ui: OpenUi, ui_url: str, api: Api, screenshots: Path
) -> None:
    task_id = await api.create(
        DB_URL, "missing:ddl_generation=2 logs:qa_generation=6", task_name="orders warehouse, nightly"
    )
    await api.wait(task_id)

    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    await expect(page.locator("#detail-title .status")).to_have_text("partial_completed")
    await expect(page.locator("#files tr")).not_to_have_count(0)
    await page.screenshot(path=screenshots / "desktop-task.png")
    await page.locator("#create").scroll_into_view_if_needed()
    await page.screenshot(path=screenshots / "desktop-form.png")

    phone, _ = await open_ui(ui_url, viewport=PHONE)
    await expect(phone.locator(f'#task-rows tr.task[data-id="{task_id}"]')).to_be_visible()
    await phone.screenshot(path=screenshots / "phone-list.png")
    await phone.locator(f'#task-rows tr.task[data-id="{task_id}"]').click()
    await expect(phone.locator("#detail-title .status")).to_have_text("partial_completed")
    await phone.screenshot(path=screenshots / "phone-task.png")
    await open_event_history(phone)
    await expect(phone.locator("#timeline tr").first).to_contain_text("task_created")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_the_runners_and_queues_view_at_desktop_and_phone_size(
    open_ui: OpenUi, ui_url: str, api: Api, screenshots: Path
) -> None:
    task_id = await api.create(DB_URL, "sleep:ddl_generation=6", task_name="nightly orders")
    await api.wait_step(task_id, "ddl_generation", "running")
    for name, viewport in (("desktop-system.png", None), ("phone-system.png", PHONE)):
        page, _ = await open_ui(f"{ui_url}/#system", viewport=viewport)
        await expect(page.get_by_role("table", name="Running steps")).to_contain_text(task_id)
        await page.screenshot(path=screenshots / name, full_page=True)
        assert await page.evaluate(_OVERFLOWS) == []
        assert (
            await page.evaluate("document.documentElement.scrollWidth")
            <= (viewport or {"width": 1366})["width"]
        )
    await api.wait(task_id)
