"""Issue #12 part 1 in the browser: the review screen (static/review.js) of a task awaiting review.

The composed stack's scripted steps write no question/SQL pairs, so the test writes the pair file and
the validation report step 3 would have written into the task's directory; everything else is the real
gateway, scheduler and collector. The screen shows the question, the formatted SQL and the verdict,
decides with the keyboard (a, r, j/k), filters (invalid, theme), counts "N/M reviewed", completes the
review, shows the quality flags step 3 kept a pair with (and filters on them), and has no serious or
critical axe violation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi, run_axe
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAIRS = [
    {
        "question": "How many orders are there?",
        "sql": "SELECT count(*) FROM orders WHERE total > 0;",
        "theme": "Sales",
    },
    {
        "question": "Which customers exist?",
        "sql": "SELECT name FROM customers ORDER BY name;",
        "theme": "Customers",
    },
    {"question": "Total revenue?", "sql": "SELECT sum(total) FROM orders;", "theme": "Sales"},
]
FLAG = {
    "code": "raw_identifier_in_question",
    "action": "keep",
    "detail": "the question spells identifiers: total",
}
BROKEN = {
    "question": "Broken one?",
    "sql": "SELEC 1",
    "error": 'syntax error at or near "SELEC"',
    "final_sql": None,
}


async def _task_in_review(api: Api, data_dir: Path) -> str:
    task_id = await api.create(DB_URL, "plain", task_name="review screen", review_before_load=True)
    detail = await api.wait(task_id, ("awaiting_review", "completed", "failed"))
    assert detail["status"] == "awaiting_review", detail
    directory = data_dir / task_id
    name = "qs_shop_20260101_000000_pair.json"
    (directory / name).write_text(json.dumps(PAIRS), encoding="utf-8")
    report = {
        "summary": {},
        "quality": [
            {
                "file": name,
                "index": 2,
                "question": PAIRS[2]["question"],
                "sql": PAIRS[2]["sql"],
                "flags": [FLAG],
                "outcome": "kept",
                "final_sql": PAIRS[2]["sql"],
                "repairs": [],
            }
        ],
        "failures": [{"file": name, "index": 3, **BROKEN, "repaired": False}],
    }
    (directory / "sql_validation_20260101_000000_report.json").write_text(
        json.dumps(report), encoding="utf-8"
    )
    return task_id


async def test_review_screen_decides_with_the_keyboard_filters_and_completes(
    open_ui: OpenUi, ui_url: str, api: Api, data_dir: Path
) -> None:
    task_id = await _task_in_review(api, data_dir)
    # The one refusal the test provokes: approving a pair whose SQL is invalid (409).
    page, _ = await open_ui(f"{ui_url}/#review={task_id}", allowed_statuses=(409,))
    screen = page.get_by_role("dialog", name=f"Review {task_id}")
    await expect(screen).to_be_visible()
    progress = page.locator("#rv-progress")
    await expect(progress).to_have_text("0/4 reviewed (0 approved, 0 rejected)")
    await expect(screen.get_by_label("Question", exact=True)).to_have_value(PAIRS[0]["question"])
    # The SQL is formatted: the main clauses start their own lines.
    await expect(page.locator("#rv-sql-view")).to_have_text("SELECT count(*)\nFROM orders\nWHERE total > 0;")
    await expect(screen).to_contain_text("Verdict: valid")

    await page.keyboard.press("a")  # approve the first, move to the second
    await expect(progress).to_have_text("1/4 reviewed (1 approved, 0 rejected)")
    await expect(screen.get_by_label("Question", exact=True)).to_have_value(PAIRS[1]["question"])
    await page.keyboard.press("r")  # reject the second
    await expect(progress).to_have_text("2/4 reviewed (1 approved, 1 rejected)")
    await page.keyboard.press("k")
    await expect(screen.get_by_label("Question", exact=True)).to_have_value(PAIRS[1]["question"])
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await expect(screen.get_by_label("Question", exact=True)).to_have_value(BROKEN["question"])
    await expect(screen).to_contain_text("Verdict: invalid — syntax error")
    await page.keyboard.press("a")  # an invalid pair cannot be approved: the screen says why
    await expect(page.locator("#rv-msg")).to_contain_text("edit it before approving it")
    await expect(progress).to_have_text("2/4 reviewed (1 approved, 1 rejected)")

    await screen.get_by_label("Verdict", exact=True).select_option("invalid")
    await expect(page.locator(".rv-list li")).to_have_count(1)
    await screen.get_by_label("Verdict", exact=True).select_option("")
    await screen.get_by_label("Theme", exact=True).select_option("Sales")
    await expect(page.locator(".rv-list li")).to_have_count(2)
    await screen.get_by_label("Theme", exact=True).select_option("")
    await screen.get_by_label("flagged only").check()
    await expect(page.locator(".rv-list li")).to_have_count(1)
    await expect(page.locator(".rv-list li")).to_contain_text("flagged — Total revenue?")
    await expect(screen).to_contain_text("Step 3 kept this pair with quality flags:")
    await expect(page.locator(".rv-quality li")).to_have_text(f"{FLAG['code']} — {FLAG['detail']}")
    await screen.get_by_label("flagged only").uncheck()
    await expect(page.locator(".rv-list li")).to_have_count(4)

    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Complete review (load approved)").click()
    await expect(page.locator("#rv-msg")).to_contain_text("review completed: 1 pairs will be loaded")
    detail = await api.wait(task_id)
    assert detail["status"] == "completed", detail
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/events", params={"limit": 1000})
    assert status == 200
    decisions = [e["payload"]["decision"] for e in body["data"]["events"] if e["type"] == "pair_reviewed"]
    assert decisions == ["approve", "reject"]


async def test_review_screen_has_no_serious_accessibility_violation(
    open_ui: OpenUi, ui_url: str, api: Api, data_dir: Path
) -> None:
    task_id = await _task_in_review(api, data_dir)
    page, _ = await open_ui(f"{ui_url}/#review={task_id}", bypass_csp=True)
    await expect(page.locator("#rv-progress")).to_have_text("0/4 reviewed (0 approved, 0 rejected)")
    await page.keyboard.press("j")
    await page.keyboard.press("j")  # the flagged pair: its flags are on screen too
    await expect(page.locator(".rv-quality")).to_be_visible()
    assert await run_axe(page) == []
    # The header's button lists the tasks awaiting review.
    await page.get_by_role("button", name="Close").first.click()
    await page.get_by_role("button", name="Review", exact=True).click()
    await expect(page.get_by_role("dialog", name="Tasks awaiting review")).to_contain_text(task_id)
    status, _ = await api.call("POST", f"{BASE}/tasks/{task_id}/review/abandon")
    assert status == 202


async def test_a_task_created_for_review_in_the_form_leads_to_the_review_screen(
    open_ui: OpenUi, ui_url: str, api: Api, data_dir: Path
) -> None:
    page, _ = await open_ui(ui_url)
    form = page.locator("#create")
    await form.get_by_label("Database connection").fill(DB_URL)
    await form.get_by_label("Tables").fill("public.orders")
    await form.get_by_label("Business context").fill("reviewed before load")
    await form.get_by_label("Task name").fill("form review")
    review = form.get_by_label("review pairs before loading")
    await expect(review).to_have_accessible_description(re.compile("waits as awaiting_review"))
    await review.check()
    await form.get_by_role("button", name="Create").click()
    await expect(page.locator("#create-msg")).to_contain_text(re.compile(r"created task_\w+"))
    task_id = re.search(r"task_\w+", await page.locator("#create-msg").inner_text()).group(0)  # type: ignore[union-attr]
    detail = await api.wait(task_id, ("awaiting_review", "completed", "failed"))
    assert detail["status"] == "awaiting_review", detail
    assert detail["parameters"]["review_before_load"] is True
    (data_dir / task_id / "qs_shop_20260101_000000_pair.json").write_text(json.dumps(PAIRS), encoding="utf-8")

    # The open detail reaches "awaiting_review" live and offers the way to the review screen.
    await expect(page.locator("#detail-title .status")).to_have_text("awaiting_review", timeout=20_000)
    link = page.get_by_role("link", name="Review the pairs")
    await expect(link).to_have_attribute("href", f"#review={task_id}")
    await link.click()
    screen = page.get_by_role("dialog", name=f"Review {task_id}")
    await expect(screen).to_be_visible()
    await expect(page.locator("#rv-progress")).to_have_text("0/3 reviewed (0 approved, 0 rejected)")
    assert page.url.endswith(f"#review={task_id}")
    # Back leaves the review screen for the task's detail; the link opens it again.
    await page.go_back()
    await expect(screen).to_be_hidden()
    await expect(page.locator("#detail-title")).to_contain_text("form review")
    await link.click()
    await expect(page.locator("#rv-progress")).to_have_text("0/3 reviewed (0 approved, 0 rejected)")
    # Closing it returns to the task's detail, still open behind it, at the task's address.
    await screen.get_by_role("button", name="Close", exact=True).click()
    await expect(screen).to_be_hidden()
    assert page.url.endswith(f"#{task_id}")
    await expect(page.locator("#detail-title")).to_contain_text("form review")
    # The detail awaiting review passes axe-core (a page without the CSP, which would refuse axe's script).
    axe_page, _ = await open_ui(f"{ui_url}/#{task_id}", bypass_csp=True)
    await expect(axe_page.get_by_role("link", name="Review the pairs")).to_be_visible()
    assert await run_axe(axe_page) == []
    status, _ = await api.call("POST", f"{BASE}/tasks/{task_id}/review/abandon")
    assert status == 202
    await expect(page.locator("#detail-title .status")).to_have_text("cancelled")
    await expect(page.locator("#review-box")).to_be_hidden()
