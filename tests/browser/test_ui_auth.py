"""The web UI against a gateway with tokens (roles on routes): it asks for the token, keeps it in this
tab's sessionStorage only, and a viewer who tries to change something reads why it was refused."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi, run_axe
from tests.e2e.conftest import DB_URL, _wait_ready
from tests.support.api import Api
from tests.support.stack import Stack, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

VIEWER = "ui-viewer-token-0123456789abcdefgh"
OPERATOR = "ui-operator-token-0123456789abcdef"


@pytest.fixture(scope="module")
def auth_ui_url(
    stack: Stack, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Its own gateway (a module-scoped Stack of one process) over the composed stack's services."""
    port = free_port()
    tokens = [
        {"token": VIEWER, "role": "viewer", "name": "ui-viewer"},
        {"token": OPERATOR, "role": "operator", "name": "ui-operator"},
    ]
    gateway = Stack(stack_env, tmp_path_factory.mktemp("ui-auth-gateway"))
    gateway.start("gateway", extra_env={"DP_HTTP_PORT": str(port), "DP_API_TOKENS": json.dumps(tokens)})
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_ready(url, gateway))
        yield url
    finally:
        gateway.stop_all()


@pytest.fixture
async def operator(auth_ui_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {OPERATOR}"}) as session:
        yield Api(session, auth_ui_url)


async def test_the_ui_asks_for_the_token_keeps_it_per_tab_and_explains_a_403(
    open_ui: OpenUi, auth_ui_url: str, operator: Api, screenshots: Path
) -> None:
    task_id = await operator.create(DB_URL, "auth ui", task_name="made by the operator")
    await operator.wait(task_id)

    # Without a token every API call is a 401 (provoked here), and the page says what it needs.
    page, probe = await open_ui(f"{auth_ui_url}/#{task_id}", allowed_statuses=(401, 403))
    token = page.get_by_label("API token")
    await expect(page.get_by_role("alert")).to_have_text("This gateway needs an API token: enter it here.")
    await expect(token).to_be_focused()
    await expect(token).to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=screenshots / "auth-token-prompt.png")

    await token.fill(VIEWER)
    await token.press("Enter")
    await expect(page.get_by_role("alert")).to_be_hidden()
    # The list and the open detail are fetched again with the token.
    await expect(page.locator("#task-rows")).to_contain_text("made by the operator")
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    await expect(page.locator("#report")).to_contain_text("final report")

    # The token is in this tab's sessionStorage, never in localStorage.
    assert await page.evaluate("sessionStorage.getItem('dp_token')") == VIEWER
    assert await page.evaluate("localStorage.length") == 0

    # A viewer may read but not run: the refusal says which role the action needs.
    await page.get_by_role("button", name="Run again").click()
    message = page.locator("#detail-msg")
    await expect(message).to_contain_text("needs the operator role")
    await expect(message).to_have_class("msg show bad")
    await page.screenshot(path=screenshots / "auth-viewer-403.png")
    assert (await operator.task(task_id))["status"] == "completed"

    # A reload in the same tab keeps the token: no prompt, the task opens.
    await page.reload()
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    await expect(page.get_by_role("alert")).to_be_hidden()
    await probe.assert_clean(page)


async def test_a_new_tab_has_no_token_and_a_wrong_one_is_refused_visibly(
    open_ui: OpenUi, auth_ui_url: str
) -> None:
    page, probe = await open_ui(auth_ui_url, allowed_statuses=(401,))
    token = page.get_by_label("API token")
    await expect(token).to_have_value("")
    await token.fill("not-a-configured-token-0123456789")
    await token.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("This token was refused: enter a valid API token.")
    await expect(page.locator("#task-rows tr.task")).to_have_count(0)
    await probe.assert_clean(page)


async def test_the_token_prompt_has_no_serious_accessibility_violations(
    open_ui: OpenUi, auth_ui_url: str
) -> None:
    page, _ = await open_ui(auth_ui_url, bypass_csp=True, allowed_statuses=(401,))
    await expect(page.get_by_role("alert")).to_be_visible()
    assert await run_axe(page) == []


async def test_a_missing_token_is_said_once_and_leaves_nothing_behind(
    open_ui: OpenUi, auth_ui_url: str, operator: Api
) -> None:
    # Issue #10 item 12: the token prompt is the one place that speaks of the token; no grey 401 text in
    # the list, the detail or the header, and once the token is in, no error of the tokenless tries stays.
    task_id = await operator.create(DB_URL, "auth leftovers", task_name="auth leftovers")
    await operator.wait(task_id)
    page, probe = await open_ui(f"{auth_ui_url}/#{task_id}", allowed_statuses=(401,))
    await expect(page.get_by_role("alert")).to_have_text("This gateway needs an API token: enter it here.")
    await expect(page.locator("#total")).to_have_text("enter the API token to see the tasks")
    for where in ("#detail-msg", "#conn", "#missing"):
        await expect(page.locator(where)).not_to_contain_text(re.compile("token|401|unauthori", re.I))
    await expect(page.locator("#detail-section")).to_contain_text("enter the API token")

    token = page.get_by_label("API token")
    await token.fill(OPERATOR)
    await token.press("Enter")
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    await expect(page.locator("#total")).to_contain_text("task(s)")
    await expect(page.locator("#detail-msg")).to_be_hidden()
    await expect(page.locator("#detail-section")).not_to_contain_text("enter the API token")
    await probe.assert_clean(page)
