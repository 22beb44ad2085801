"""Issue #10 item 7 in the browser: the steps table never shows a state that misleads.

- a step that reports failed tables is "completed with warnings" and names them (not a plain green
  "completed");
- a step a finished partial task never ran is "not run", not "pending";
- after a failed single-step run and a later successful one, no red row of the old failure remains.
Each was reproduced on the UI before the fix.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenUi
from tests.e2e.conftest import DB_URL
from tests.support.api import Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def step_row(page: Page, step: str):  # type: ignore[no-untyped-def]
    return page.locator("#steps tr", has=page.locator("td", has_text=re.compile(f"^{step}$")))


async def test_failed_tables_and_never_run_steps_are_named(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(DB_URL, "missing:ddl_generation=3 fail:qa_generation", task_name="warnings")
    assert (await api.wait(task_id))["status"] == "partial_completed"
    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    ddl = step_row(page, "ddl_generation")
    await expect(ddl.locator(".status")).to_have_text("completed with warnings")
    await expect(ddl).to_contain_text("3 of 4 tables failed")
    await expect(ddl).to_contain_text("public.missing_0")
    await expect(step_row(page, "qa_generation").locator(".status")).to_have_text("failed")
    for never in ("sql_validation", "training_load"):
        await expect(step_row(page, never).locator(".status")).to_have_text("not run")


async def test_a_later_successful_step_run_clears_the_old_failure(
    open_ui: OpenUi, ui_url: str, api: Api
) -> None:
    # The sequence: a good run, a single-step run of step 1 that fails, another one that succeeds.
    task_id = await api.create(DB_URL, "failrun:ddl_generation=2", task_name="stale red")
    assert (await api.wait(task_id))["status"] == "completed"
    page, _ = await open_ui(f"{ui_url}/#{task_id}")
    ddl = step_row(page, "ddl_generation")
    await expect(ddl.locator(".status")).to_have_text("completed")
    await ddl.get_by_role("button", name="run").click()
    await expect(ddl.locator(".status")).to_have_text("failed", timeout=30_000)
    await expect(ddl).to_contain_text("scripted failure of run 2")
    await expect(page.locator("#rerun")).to_be_enabled(timeout=30_000)
    await ddl.get_by_role("button", name="run").click()
    await expect(ddl.locator(".status")).to_have_text("completed", timeout=30_000)
    await expect(page.locator("#rerun")).to_be_enabled(timeout=30_000)
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    # Nothing red is left about the failed run: not in the steps, the task or its report (the log keeps
    # it, as history should).
    await expect(page.locator("#detail-section .err:not(:empty)")).to_have_count(0)
    for where in ("#steps", "#detail-kv", "#report"):
        await expect(page.locator(where)).not_to_contain_text("scripted failure")
