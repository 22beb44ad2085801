"""The main views at desktop (1366x900) and phone (390x844) size, as `make screenshots` commits them under
docs/ui/ (linked from the README). In the ordinary run the pictures go to a temporary directory; the test
still checks that each view is the one pictured, so a broken view fails here too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi
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
