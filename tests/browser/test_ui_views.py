"""Issue #10, the remaining features in the browser, on the composed stack (scripted steps):

- the run view's event history (GET /tasks/{id}/events): legible rows, log lines left out unless asked
  for, paged, extended while the run is live;
- the task list's multi-select with batch cancel and batch delete (the filters stay in the URL);
- the log viewer's level/step/text/time filters in the URL (a deep link restores them) and the download
  of the whole log;
- the runners-and-queues view (GET /api/v0/system/overview) while a step runs.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Dialog, expect

from shared.broker import Topology
from tests.browser.conftest import OpenUi, open_event_history, run_axe
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_the_event_history_is_legible_paged_and_live(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    task_id = await api.create(
        DB_URL, "sleep:ddl_generation=2 logs:qa_generation=60", task_name="history run"
    )
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    await expect(page.locator("#detail-title")).to_contain_text("history run")
    await open_event_history(page)
    rows = page.locator("#timeline tr")
    first = rows.first
    await expect(first.locator("td").nth(2)).to_have_text("task_created")
    await expect(first).to_contain_text("steps: ddl_generation, qa_generation, sql_validation, training_load")
    # Followed while the run is live: its end arrives without reopening the section.
    finished = rows.filter(has=page.locator("td", has_text=re.compile("^task_finished$")))
    await expect(finished).to_have_count(1, timeout=30_000)
    await expect(finished).to_contain_text("completed")
    started = rows.filter(has=page.locator("td", has_text=re.compile("^step_started$")))
    await expect(started).to_have_count(4)
    await expect(started.first).to_contain_text(re.compile(r"ddl_generation.*attempt 1 on runner-[ab]"))
    await expect(rows.filter(has_text="output_registered").first).to_contain_text("ddl_generation.txt")
    # Log lines, heartbeats and progress are the log viewer's: left out here unless asked for.
    assert await rows.filter(has_text="log_emitted").count() == 0
    history = await rows.count()
    assert history < 50

    await page.get_by_label("include log lines, heartbeats and progress").check()
    await expect(page.locator("#timeline-count")).to_have_text("50 event(s), more below")
    await expect(rows.filter(has_text="log_emitted").first).to_be_visible()
    await page.get_by_role("button", name="load more events").click()
    await expect(rows).not_to_have_count(50)
    assert await rows.count() > 50
    while await page.get_by_role("button", name="load more events").is_visible():
        await page.get_by_role("button", name="load more events").click()
    await expect(rows.filter(has_text="INFO qa_generation scripted line 56 (info)")).to_have_count(1)
    await expect(page.locator("#timeline-count")).to_have_text(re.compile(r"^\d+ event\(s\)$"))
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(f"{ui_url}/#{task_id}", bypass_csp=True)
    await open_event_history(axe_page)
    await expect(axe_page.locator("#timeline tr").first).to_contain_text("task_created")
    assert await run_axe(axe_page) == []


async def test_batch_cancel_and_delete_from_the_list(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    tag = f"batch{uuid.uuid4().hex[:6]}"
    done = await api.create(DB_URL, "plain", task_name=f"{tag} done")
    await api.wait(done)
    running = [
        await api.create(DB_URL, "sleep:ddl_generation=60", task_name=f"{tag} long {i}") for i in range(2)
    ]
    await api.wait(running[0], ("pending", "in_progress"))
    await api.wait(running[1], ("pending", "in_progress"))

    page, probe = await open_ui(f"{ui_url}/?q={tag}")
    rows = page.locator("#task-rows tr.task")
    await expect(rows).to_have_count(3)
    batch = page.get_by_role("region", name="Selected tasks")
    await expect(batch).to_be_hidden()
    for task_id in running:
        await page.locator(f'#task-rows tr.task[data-id="{task_id}"]').get_by_role("checkbox").check()
    # Ticking a row's box selects it without opening it.
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(batch).to_contain_text("2 selected")
    await batch.get_by_role("button", name="Cancel 2 running").click()
    for task_id in running:
        await expect(page.locator(f'#task-rows tr.task[data-id="{task_id}"] .status')).to_have_text(
            "cancelled", timeout=20_000
        )
    await expect(batch.get_by_role("button", name="Cancel 0 running")).to_be_disabled()

    # Select all (the listed three), delete them after a confirmation.
    await page.get_by_label("Select all listed tasks").check()
    await expect(batch).to_contain_text("3 selected")
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await batch.get_by_role("button", name="Delete selected").click()
    await expect(page.locator("#batch-msg")).to_contain_text("3 deleted")
    await expect(rows).to_have_count(0)
    assert asked == ["Delete 3 task(s) with their files and records?"]
    for task_id in [done, *running]:
        status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
        assert status == 404
    # The search stayed in the URL throughout.
    assert parse_qs(urlsplit(page.url).query) == {"q": [tag]}
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(ui_url, bypass_csp=True)
    await axe_page.locator("#task-rows tr.task").first.get_by_role("checkbox").check()
    await expect(axe_page.get_by_role("region", name="Selected tasks")).to_be_visible()
    assert await run_axe(axe_page) == []


async def test_log_filters_live_in_the_url_and_the_whole_log_downloads(
    open_ui: OpenUi, ui_url: str, api: Api, data_dir: Path
) -> None:
    task_id = await api.create(DB_URL, "logs:ddl_generation=20 logs:qa_generation=5", task_name="log url")
    assert (await api.wait(task_id))["status"] == "completed"
    # A deep link with filters: the controls and the lines follow it.
    page, probe = await open_ui(f"{ui_url}/?level=ERROR&step=ddl_generation&text=scripted#{task_id}")
    lines = page.locator("#logs div")
    await expect(page.get_by_label("Minimum log level")).to_have_value("ERROR")
    await expect(page.get_by_label("Log lines of step")).to_have_value("ddl_generation")
    await expect(page.get_by_label("Search log lines")).to_have_value("scripted")
    await expect(page.locator("#log-count")).to_have_text("8 of 8 line(s)")  # 4 ERROR + 4 CRITICAL of 20
    texts = await lines.all_inner_texts()
    assert all("[ddl_generation]" in t and ("ERROR" in t or "CRITICAL" in t) for t in texts), texts

    # Changing a filter changes the URL (the history entry is replaced, not added).
    await page.get_by_label("Minimum log level").select_option("CRITICAL")
    await expect(page.locator("#log-count")).to_have_text("4 of 4 line(s)")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"level": ["CRITICAL"], "step": ["ddl_generation"], "text": ["scripted"]}
    assert urlsplit(page.url).fragment == task_id
    # A time range: from an hour ahead, nothing; up to now again, the lines are back; kept in the URL too.
    # Whole seconds other than :00, which a datetime-local input drops from its value.
    later = (datetime.now() + timedelta(hours=1)).replace(second=30).strftime("%Y-%m-%dT%H:%M:%S")
    await page.get_by_label("from", exact=True).fill(later)
    await expect(page.locator("#logs")).to_have_text("No log lines match these filters.")
    assert parse_qs(urlsplit(page.url).query)["since"] == [later]
    await page.reload()
    await expect(page.get_by_label("from", exact=True)).to_have_value(later)
    await expect(page.locator("#logs")).to_have_text("No log lines match these filters.")
    # An end before the start is refused in place (no request the server would answer with a 400).
    earlier = (datetime.now() - timedelta(hours=1)).replace(second=30).strftime("%Y-%m-%dT%H:%M:%S")
    await page.get_by_label("to", exact=True).fill(earlier)
    await expect(page.locator("#detail-msg")).to_have_text(
        "logs: the end of the time range is before its start"
    )
    await expect(page.get_by_label("to", exact=True)).to_have_attribute("aria-invalid", "true")
    # Nor from the page's other requests of the log: the catch-up when a task's stream ends (which once
    # sent the inverted range, failing this test on a console error) and the initial load.
    await page.evaluate("async () => { await (await import('/static/logs.js')).catchUpLogs(); }")
    await page.evaluate("async () => { await (await import('/static/logs.js')).loadLogs(); }")
    await page.get_by_label("to", exact=True).fill("")
    await expect(page.get_by_label("to", exact=True)).not_to_have_attribute("aria-invalid", "true")
    await page.get_by_label("from", exact=True).fill("")
    await expect(page.locator("#log-count")).to_have_text("4 of 4 line(s)")

    # The whole log (not only the filtered lines), as the task's data_pipeline.log has it.
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download full log").click()
    download = await info.value
    assert download.suggested_filename == f"{task_id}_data_pipeline.log"
    got = Path(await download.path()).read_bytes()
    assert got == (data_dir / task_id / "data_pipeline.log").read_bytes()
    assert b"qa_generation scripted line 4" in got
    await probe.assert_clean(page)


async def test_runners_and_queues_show_the_running_step(
    open_ui: OpenUi, ui_url: str, api: Api, stack_env: dict[str, str], screenshots: Path
) -> None:
    task_id = await api.create(DB_URL, "sleep:ddl_generation=8", task_name="overview run")
    await api.wait_step(task_id, "ddl_generation", "running")
    page, probe = await open_ui(ui_url)
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Runners & queues").click()
    await expect(page).to_have_url(f"{ui_url}/#system")
    running = page.get_by_role("table", name="Running steps")
    row = running.locator("tr", has_text=task_id)
    await expect(row).to_contain_text(re.compile(r"ddl_generation \(attempt 1\)\s*runner-[ab]"))
    runner = (await row.locator("td").nth(2).inner_text()).strip()
    await expect(page.get_by_role("table", name="Runners").locator("tr", has_text=runner)).to_be_visible()
    steps_queue = Topology(stack_env["DP_BROKER_PREFIX"]).steps_queue
    queue = page.get_by_role("table", name="Queues").locator(
        "tr", has=page.locator("td", has_text=re.compile(f"^{re.escape(steps_queue)}$"))
    )
    await expect(queue.locator("td").nth(2)).to_have_text("2")  # runner-a and runner-b consume it
    await page.screenshot(path=screenshots / "desktop-system.png", full_page=True)
    # A running step's task opens from the panel, in the task view; Back returns to the panel.
    await row.get_by_role("link", name=task_id).click()
    await expect(page.locator("#detail-title")).to_contain_text("overview run")
    await page.go_back()
    await expect(page.locator("#view-system")).to_be_visible()
    # The panel is live: the step leaves it when it ends, without a reload.
    await expect(row).to_have_count(0, timeout=30_000)
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(f"{ui_url}/#system", bypass_csp=True)
    await expect(axe_page.get_by_role("table", name="Queues")).to_be_visible()
    assert await run_axe(axe_page) == []


async def test_a_steps_execution_history_opens_under_its_row(open_ui: OpenUi, ui_url: str, api: Api) -> None:
    # Step 1's first attempt fails retryably, the second succeeds: two executions.
    task_id = await api.create(DB_URL, "transient:ddl_generation", task_name="history of attempts")
    assert (await api.wait(task_id))["status"] == "completed"
    page, probe = await open_ui(f"{ui_url}/#{task_id}")
    toggle = page.get_by_role("button", name="2 execution(s) of ddl_generation: show the history")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    history = page.get_by_role("table", name="Executions of ddl_generation")
    rows = history.locator("tbody tr")
    await expect(rows).to_have_count(2)
    # Newest first: the attempt that succeeded, then the one that failed, each with its runner and times.
    await expect(rows.nth(0)).to_contain_text(re.compile(r"^2\s*completed\s*runner-[ab]"))
    await expect(rows.nth(1)).to_contain_text(re.compile(r"^1\s*failed\s*runner-[ab]"))
    await expect(rows.nth(1)).to_contain_text("temporary outage (scripted)")
    await expect(
        page.get_by_role("button", name="2 execution(s) of ddl_generation: hide the history")
    ).to_have_attribute("aria-expanded", "true")
    # The other steps ran once; the step rows are still four (the history is a row of its own).
    await expect(page.locator("#steps > tr[data-step]")).to_have_count(4)
    await page.get_by_role("button", name="2 execution(s) of ddl_generation: hide the history").click()
    await expect(history).to_have_count(0)
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(f"{ui_url}/#{task_id}", bypass_csp=True)
    await axe_page.get_by_role("button", name="2 execution(s) of ddl_generation: show the history").click()
    await expect(axe_page.get_by_role("table", name="Executions of ddl_generation")).to_be_visible()
    assert await run_axe(axe_page) == []
