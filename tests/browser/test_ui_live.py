"""Issue #10 in the browser: what a user watching runs relies on, each reproduced first on the UI before
the fix (the item named in each test failed there).

- item 1: a re-run (the task's "Run again", a step's "run") is shown live, with its new log lines;
- item 6: the overall bar, the list's percentage and running durations move while a step works;
- item 5: rows loaded with "more" survive the list's auto-refresh;
- item 2: a gateway restart mid-run: the page says the connection is lost, reconnects, and the run is
  seen to its end;
- item 4: the log viewer pages back to older lines, filters by level (all five), step and text, counts
  its lines, and says so when nothing matches.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenUi
from tests.e2e.conftest import DB_URL, _wait_ready
from tests.support.api import BASE, Api
from tests.support.stack import Stack, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def step_row(page: Page, step: str):  # type: ignore[no-untyped-def]
    return page.locator("#steps tr", has=page.locator("td", has_text=re.compile(f"^{step}$")))


async def test_a_rerun_and_a_step_run_are_shown_live(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(
        DB_URL, "sleep:ddl_generation=1.5 sleep:qa_generation=1.5", task_name="rerun live"
    )
    assert (await api.wait(task_id))["status"] == "completed"
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    status = page.locator("#detail-title .status")
    await expect(status).to_have_text("completed")
    starting = page.locator("#logs div", has_text="ddl_generation starting")
    await expect(starting).to_have_count(1)

    await page.get_by_role("button", name="Run again").click()
    # The new run is followed live: its steps run on screen and its log lines arrive.
    await expect(page.locator("#live")).to_have_text("● live")
    await expect(step_row(page, "qa_generation").locator(".status")).to_have_text("running", timeout=30_000)
    await expect(starting).to_have_count(2)
    await expect(status).to_have_text("completed", timeout=30_000)
    await expect(page.locator("#live")).to_have_text("○ not live")
    # The change of status is announced to screen readers (a polite live region).
    await expect(page.get_by_role("status").filter(has_text="is completed")).to_have_count(1)
    await expect(page.locator("#logs div", has_text="training_load done")).to_have_count(2)

    # A single step's run, started from its row, is live as well.
    # (Step 1: the scripted steps write none of the inputs a later step checks for before it runs.)
    await step_row(page, "ddl_generation").get_by_role("button", name="run").click()
    await expect(page.locator("#live")).to_have_text("● live")
    await expect(step_row(page, "ddl_generation").locator(".status")).to_have_text("running", timeout=30_000)
    await expect(starting).to_have_count(3)
    await expect(status).to_have_text("completed", timeout=30_000)
    await expect(step_row(page, "ddl_generation").locator("td").nth(3)).to_have_text("3")
    await expect(page.locator("#rerun")).to_be_enabled()
    await probe.assert_clean(page)


async def test_progress_and_durations_move_while_a_step_works(
    open_ui: OpenUi, ui_url: str, api: Api, screenshots: Path
) -> None:
    task_id = await api.create(DB_URL, "sleep:ddl_generation=5", task_name="progress live")
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    ddl = step_row(page, "ddl_generation")
    await expect(ddl.locator(".status")).to_have_text("running", timeout=30_000)
    # While step 1 of 4 works, the overall bar moves between 1% and 25%, and the list shows the same number.
    bar = page.locator("#progress-box")
    await expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^([1-9]|1\d|2[0-5])$"))
    shown = await bar.get_attribute("aria-valuenow")
    await expect(page.locator("#progress")).to_have_attribute("style", re.compile(r"width: [1-9]"))
    row = page.locator(f'#task-rows tr.task[data-id="{task_id}"]')
    await expect(row.locator(".pct")).not_to_have_text("0%")
    # The running step's duration ticks (never the "0s" of the first refresh).
    await expect(ddl.locator(".dur")).to_have_text(re.compile(r"^[2-9]s$"))
    await page.screenshot(path=screenshots / "progress-live.png", full_page=True)
    await expect(page.locator("#detail-title .status")).to_have_text("completed", timeout=30_000)
    await expect(bar).to_have_attribute("aria-valuenow", "100")
    await expect(page.locator("#steps .status", has_text="running")).to_have_count(0)
    assert shown is not None
    await probe.assert_clean(page)


async def test_more_rows_stay_after_the_auto_refresh(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    # Tasks that wait for execute (the earlier flat create): enough for a second page, and none runs.
    for i in range(21):
        status, data = await api.call(
            "POST", f"{BASE}/tasks", json={"db_connection": DB_URL, "task_name": f"more list {i}"}
        )
        assert status in (201, 202), data
    page, probe = await open_ui(ui_url)
    # A controlled clock from the page's start, so its 10 s refresh timer can be run at once.
    await page.clock.install()
    await page.reload()
    rows = page.locator("#task-rows tr.task")
    await expect(rows).to_have_count(20)
    await page.get_by_role("button", name="more").click()
    await expect(rows).not_to_have_count(20)
    loaded = await rows.count()
    assert loaded > 20
    async with page.expect_response(lambda r: "/data_pipeline/tasks?" in r.url) as refreshed:
        await page.clock.run_for(11_000)  # the list refreshes every 10 s
    await (await refreshed.value).finished()
    await page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)))")
    await expect(rows).to_have_count(loaded)
    await expect(page.locator("#total")).to_contain_text(f"{loaded} of")
    await probe.assert_clean(page)


async def test_the_log_viewer_pages_filters_and_counts(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(DB_URL, "logs:ddl_generation=250", task_name="many log lines")
    assert (await api.wait(task_id))["status"] == "completed"
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    logs, count = page.locator("#logs"), page.locator("#log-count")
    lines = logs.locator("div")
    await expect(count).to_have_text(re.compile(r"^200 of \d+ line\(s\)$"))
    total = int(re.search(r"of (\d+)", await count.inner_text()).group(1))  # type: ignore[union-attr]
    assert total > 250
    await expect(logs).not_to_contain_text("scripted line 0 ")  # the oldest lines are on the next page
    await page.get_by_role("button", name="load older").click()
    await expect(count).to_have_text(f"{total} of {total} line(s)")
    await expect(lines).to_have_count(total)
    await expect(logs).to_contain_text("scripted line 0 (debug)")
    await expect(page.get_by_role("button", name="load older")).to_be_hidden()

    # Every level is offered; CRITICAL shows only the critical lines (the API's filter, counted).
    await page.get_by_label("Minimum log level").select_option("CRITICAL")
    await expect(count).to_have_text("50 of 50 line(s)")
    assert set(await lines.evaluate_all("ns => ns.map(n => n.className)")) == {"l-CRITICAL"}
    await page.get_by_label("Minimum log level").select_option("DEBUG")
    # Step filter and text search.
    await page.get_by_label("Log lines of step").select_option("qa_generation")
    await expect(lines.first).to_contain_text("[qa_generation]")
    assert all("[qa_generation]" in t for t in await lines.all_inner_texts())
    await page.get_by_label("Log lines of step").select_option("")
    await page.get_by_label("Search log lines").fill("scripted line 123 ")
    await expect(lines).to_have_count(1)
    await expect(lines).to_contain_text("scripted line 123 (error)")
    # An empty result says so instead of an empty black box.
    await page.get_by_label("Search log lines").fill("no line says this")
    await expect(logs).to_have_text("No log lines match these filters.")
    await expect(count).to_have_text("0 of 0 line(s)")
    # The log box is reachable by keyboard (it scrolls with the arrow keys).
    await logs.focus()
    await expect(logs).to_be_focused(timeout=2_000)
    await probe.assert_clean(page)


async def test_the_follow_toggle_keeps_the_newest_line_in_view(
    open_ui: OpenUi, ui_url: str, api: Api
) -> None:
    task_id = await api.create(
        DB_URL, "sleep:ddl_generation=3 logs:qa_generation=60", task_name="follow logs"
    )
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    logs = page.locator("#logs")
    follow = page.get_by_label("follow", exact=True)
    await expect(follow).to_be_checked()
    await expect(page.locator("#live")).to_have_text("● live")
    await expect(page.locator("#detail-title .status")).to_have_text("completed", timeout=30_000)
    await expect(logs).to_contain_text("training_load done")
    at_end = "e => e.scrollHeight - e.scrollTop - e.clientHeight < 4"
    assert await logs.evaluate("e => e.scrollHeight > e.clientHeight")
    assert await logs.evaluate(at_end)
    await follow.uncheck()
    await logs.evaluate("e => { e.scrollTop = 0; }")
    await page.get_by_label("Search log lines").fill("scripted")  # reloads the lines
    await expect(page.locator("#log-count")).to_have_text("60 of 60 line(s)")
    assert await logs.evaluate("e => e.scrollTop") == 0
    await follow.check()
    assert await logs.evaluate(at_end)
    # Reading back with the keyboard stops following.
    await logs.focus()
    await page.keyboard.press("PageUp")
    await expect(follow).not_to_be_checked()
    await probe.assert_clean(page)


# --- item 2: the gateway restarts while a task runs ---------------------------------------------


@pytest.fixture(scope="module")
def own_gateway(
    stack: Stack, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A gateway process of this module's own (over the composed stack's services), to stop and start."""
    gateway = Stack(
        {**stack_env, "DP_HTTP_PORT": str(free_port())}, tmp_path_factory.mktemp("ui-restart-gateway")
    )
    gateway.start("gateway")
    try:
        asyncio.run(_wait_ready(f"http://127.0.0.1:{gateway.env['DP_HTTP_PORT']}", gateway))
        yield gateway
    finally:
        gateway.stop_all()


@pytest.fixture
async def own_api(own_gateway: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{own_gateway.env['DP_HTTP_PORT']}")


async def test_a_gateway_restart_mid_run_reconnects_and_shows_the_end(
    open_ui: OpenUi, own_gateway: Stack, own_api: Api, screenshots: Path
) -> None:
    url = f"http://127.0.0.1:{own_gateway.env['DP_HTTP_PORT']}"
    task_id = await own_api.create(DB_URL, "sleep:ddl_generation=12", task_name="gateway restart")
    page, probe = await open_ui(f"{url}/#{task_id}")
    live = page.locator("#live")
    await expect(step_row(page, "ddl_generation").locator(".status")).to_have_text("running", timeout=30_000)
    await expect(live).to_have_text("● live")

    own_gateway.stop("gateway")
    # The stream and the polls while the gateway is down fail: provoked here.
    await expect(live).to_contain_text("reconnecting")
    await page.screenshot(path=screenshots / "connection-lost.png", full_page=True)
    probe.failed_requests.clear()
    probe.console_errors.clear()
    own_gateway.start("gateway")
    await _wait_ready(url, own_gateway)
    await expect(live).to_have_text("● live", timeout=20_000)
    probe.failed_requests.clear()
    probe.console_errors.clear()
    await expect(page.locator("#detail-title .status")).to_have_text("completed", timeout=30_000)
    await expect(step_row(page, "ddl_generation").locator(".status")).to_have_text("completed")
    await expect(page.locator("#logs")).to_contain_text("training_load done")
    await expect(live).to_have_text("○ not live")
    await probe.assert_clean(page)
