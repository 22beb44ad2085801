"""Issue #10 item 11 in the browser: the layout holds at a laptop's width and on a phone.

- at 1366 px nothing spills out of its card (the task table with long names included);
- at 390x844 the page is never wider than the screen, and the list and the detail are separate views:
  tapping a task shows its detail at the top, and a "back" control returns to the list.
Reproduced on the UI before the fix (the phone width was a strict expected failure in test_ui_defects).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import DESKTOP, OpenUi
from tests.e2e.conftest import DB_URL
from tests.support.api import Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
LONG_NAME = "quarterly_revenue_reconciliation_for_the_emea_finance_data_warehouse_2026"

# Every element wider than the card it sits in (or than the page), named for the assertion message.
_OVERFLOWS = """() => {
  const out = [];
  const page = document.documentElement.clientWidth;
  for (const node of document.querySelectorAll("section, section *")) {
    const r = node.getBoundingClientRect();
    if (!r.width || node.closest("[hidden]")) continue;
    const card = node.closest("section").getBoundingClientRect();
    // Text running past its own box (a long unbroken name) counts too, unless the box scrolls itself.
    const spills = node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX === "visible";
    if (spills || r.right > card.right + 1 || r.right > page + 1) out.push(`${node.tagName}#${node.id}.${node.className} right=${Math.round(r.right)} card=${Math.round(card.right)}`);
  }
  return out.slice(0, 5);
}"""


async def _scroll_width(page: Page) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def test_nothing_spills_out_of_its_card_at_1366(
    open_ui: OpenUi, ui_url: str, api: Api, screenshots: Path
) -> None:
    task_id = await api.create(DB_URL, "plain " + LONG_NAME, task_name=LONG_NAME)
    await api.wait(task_id)
    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    await expect(page.locator("#steps tr")).to_have_count(4)
    await expect(page.locator(f'#task-rows tr.task[data-id="{task_id}"]')).to_be_visible()
    assert await page.evaluate(_OVERFLOWS) == []
    assert await _scroll_width(page) <= DESKTOP["width"]
    # The detail pane stays in view while the page scrolls down the list and the form.
    await page.set_viewport_size({"width": DESKTOP["width"], "height": 500})
    await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert await page.evaluate("window.scrollY") > 0
    await expect(page.locator("#detail-title")).to_be_in_viewport()
    await page.screenshot(path=screenshots / "layout-1366.png", full_page=False)


async def test_a_phone_shows_list_and_detail_as_separate_views(
    open_ui: OpenUi, ui_url: str, api: Api, screenshots: Path
) -> None:
    task_id = await api.create(DB_URL, "plain", task_name=LONG_NAME)
    await api.wait(task_id)
    page, _ = await open_ui(ui_url, viewport=PHONE)
    row = page.locator(f'#task-rows tr.task[data-id="{task_id}"]')
    await expect(row).to_be_visible()
    assert await page.evaluate(_OVERFLOWS) == []
    assert await _scroll_width(page) <= PHONE["width"]
    await expect(page.locator("#detail-section")).to_be_hidden()

    await row.click()
    title = page.locator("#detail-title")
    await expect(title).to_contain_text(LONG_NAME)
    await expect(title).to_be_in_viewport()
    await expect(page.locator("#task-rows")).to_be_hidden()
    await expect(page.locator("#steps tr")).to_have_count(4)
    assert await page.evaluate(_OVERFLOWS) == []
    assert await _scroll_width(page) <= PHONE["width"]
    await page.screenshot(path=screenshots / "phone-detail.png", full_page=True)

    # Back to the list: the control, and the browser's Back button.
    await page.get_by_role("button", name="All tasks").click()
    await expect(row).to_be_visible()
    await expect(page.locator("#detail-section")).to_be_hidden()
    await page.go_back()
    await expect(title).to_contain_text(LONG_NAME)
    await page.go_back()
    await expect(row).to_be_in_viewport()
