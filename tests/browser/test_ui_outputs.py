"""Issue #10, what a run leaves behind, in the browser on the REAL steps (offline LLM, demo database):

- files grouped by step and type, the per-table files collapsed, an inline preview of the text kinds
  (escaped, never run; capped at 128 KB), and a download whose bytes equal the file on disk;
- the training-data page: the store's counts by the task that loaded them, and a search by meaning whose
  results name that task and open it.

One real task (4 demo tables, so step 1 writes 4 .ddl and 4 _detail.md files) serves both tests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi, run_axe
from tests.browser.test_ui_layout import _OVERFLOWS
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.real_stack import real_env, real_stack  # noqa: F401  (fixtures)
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TABLES = ["public.customers", "public.orders", "public.products", "public.order_items"]
PREVIEW_CAP = 128 * 1024  # the UI's cap (files.js PREVIEW_BYTES); uploads stop at 256 KB


@pytest.fixture(scope="module")
async def real_url(real_stack: Stack, real_env: dict[str, str]) -> str:  # noqa: F811
    return f"http://127.0.0.1:{real_env['DP_HTTP_PORT']}"


@pytest.fixture(scope="module")
async def loaded_task(real_url: str, demo_db_url: str) -> AsyncIterator[str]:  # noqa: F811
    async with aiohttp.ClientSession() as session:
        api = Api(session, real_url)
        task_id = await api.create(
            demo_db_url, "An online retail shop", table_list=TABLES, db_name="shop", task_name="outputs run"
        )
        detail = await api.wait(task_id, timeout=240)
        assert detail["status"] == "completed", detail
        yield task_id


async def test_files_are_grouped_previewed_as_text_and_downloaded(
    open_ui: OpenUi,
    real_url: str,
    loaded_task: str,
    real_env: dict[str, str],  # noqa: F811
    screenshots: Path,
) -> None:
    task_dir = Path(real_env["DP_DATA_ROOT"]) / loaded_task
    # A documentation file edited to hold markup: the preview must show it as characters, never run it.
    hostile = '# customers\n<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n'
    # And a text file larger than the preview's cap (and within the upload limit).
    big = "".join(f"line {i:07d} of a long mapping file\n" for i in range(6000))
    assert len(big) > PREVIEW_CAP
    async with aiohttp.ClientSession() as session:
        for name, text in (("customers_detail.md", hostile), ("filename_mapping.txt", big)):
            form = aiohttp.FormData()
            form.add_field("file", text.encode(), filename=name, content_type="text/plain")
            form.add_field("overwrite_mode", "replace")
            async with session.post(f"{real_url}{BASE}/tasks/{loaded_task}/files", data=form) as resp:
                assert resp.status == 200, await resp.text()

    page, probe = await open_ui(f"{real_url}/#{loaded_task}")
    files = page.locator("#files")
    await expect(page.locator("#detail-title .status")).to_have_text("completed")
    # Grouped by step: a header row per step, ddl_generation first.
    steps = files.locator("tr.file-step th")
    await expect(steps.first).to_contain_text("ddl_generation")
    await expect(files.locator("tr.file-step", has_text="qa_generation")).to_have_count(1)
    # The four per-table .ddl files are collapsed behind one toggle; it opens and closes them.
    ddl_link = files.get_by_role("link", name="customers.ddl", exact=True)
    await expect(ddl_link).to_be_hidden()
    toggle = files.get_by_role("button", name=re.compile(r"^show 4 \S+ files$")).first
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await files.get_by_role("button", name=re.compile(r"^show 4 ddl files$")).click()
    await expect(ddl_link).to_be_visible()
    await expect(files.get_by_role("button", name="hide 4 ddl files")).to_have_attribute(
        "aria-expanded", "true"
    )

    # Preview of a .ddl: its text, as it is on disk.
    await files.get_by_role("button", name="preview customers.ddl").click()
    body = page.locator("#preview-body")
    await expect(page.locator("#preview-title")).to_have_text("customers.ddl")
    await expect(body).to_have_text(
        (task_dir / "customers.ddl").read_text(encoding="utf-8"), use_inner_text=True
    )
    # The edited .md: markup shown as text, nothing run, no element made from it.
    await page.get_by_role("button", name=re.compile(r"^show 4 \S+ files$")).first.click()
    await files.get_by_role("button", name="preview customers_detail.md").click()
    await expect(body).to_contain_text('<img src=x onerror="window.__pwned=1"><script>')
    assert await body.locator("img, script").count() == 0
    assert await page.evaluate("window.__pwned === undefined")
    # A .json is shown indented.
    await files.get_by_role("button", name="preview schema_catalog.json").click()
    await expect(page.locator("#preview-title")).to_have_text("schema_catalog.json")
    await expect(body).to_contain_text('{\n  "')
    # A large file: only the first 256 KB are fetched and shown, and the note says so.
    await files.get_by_role("button", name="preview filename_mapping.txt").click()
    await expect(page.locator("#preview-note")).to_contain_text("the first 128.0 KB of")
    assert len(await body.text_content() or "") == PREVIEW_CAP
    await page.screenshot(path=screenshots / "files-preview.png", full_page=True)
    assert await page.evaluate(_OVERFLOWS) == []  # long file names and lines stay in their card
    await page.get_by_role("button", name="Close preview").click()
    await expect(body).to_be_hidden()

    # Download: the bytes the step wrote.
    async with page.expect_download() as info:
        await ddl_link.click()
    download = await info.value
    assert download.suggested_filename == "customers.ddl"
    assert Path(await download.path()).read_bytes() == (task_dir / "customers.ddl").read_bytes()
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(f"{real_url}/#{loaded_task}", bypass_csp=True)
    await axe_page.locator("#files").get_by_role("button", name="show 4 ddl files").click()
    await axe_page.locator("#files").get_by_role("button", name="preview customers.ddl").click()
    await expect(axe_page.locator("#preview-body")).not_to_be_empty()
    assert await run_axe(axe_page) == []


async def test_training_data_page_shows_the_store_and_searches_it(
    open_ui: OpenUi, real_url: str, loaded_task: str, screenshots: Path
) -> None:
    page, probe = await open_ui(real_url)
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Training data").click()
    await expect(page).to_have_url(f"{real_url}/#training")
    stats = page.locator("#training-stats")
    await expect(stats).to_contain_text(re.compile(r"rows\s*\d+ \(question/SQL pairs [1-9]"))
    await expect(stats.get_by_role("link", name=loaded_task).first).to_be_visible()

    # A question without text is refused in place.
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#training-q-err")).to_have_text("required: a question to look for")
    await page.get_by_role("textbox", name="Question", exact=True).fill(
        "How many orders did each customer place?"
    )
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#training-summary")).to_contain_text("nearest first")
    hits = page.locator("#training-results li.hit")
    await expect(hits.first).to_be_visible()
    await expect(hits.filter(has_text="question/SQL pairs").first).to_contain_text("SELECT")
    await expect(hits.first).to_contain_text(f"loaded by {loaded_task}")
    await page.screenshot(path=screenshots / "desktop-training.png", full_page=True)
    assert await page.evaluate(_OVERFLOWS) == []
    # Only DDL: every result is DDL.
    kinds = page.get_by_role("group", name="Kinds")
    await kinds.get_by_label("question/SQL pairs").uncheck()
    await kinds.get_by_label("documentation").uncheck()
    await page.get_by_role("button", name="Search").click()
    await expect(hits.first).to_contain_text("CREATE TABLE")
    assert {t.split(" score")[0] for t in await hits.locator(".hit-head").all_inner_texts()} == {"DDL"}

    # The task that loaded a result opens from it, in the task view; Back returns to the page.
    await hits.first.get_by_role("link", name=loaded_task).click()
    await expect(page.locator("#detail-title")).to_contain_text("outputs run")
    await expect(page.locator("#view-training")).to_be_hidden()
    await page.go_back()
    await expect(page.locator("#view-training")).to_be_visible()
    await probe.assert_clean(page)

    axe_page, _ = await open_ui(f"{real_url}/#training", bypass_csp=True)
    await expect(axe_page.locator("#training-stats")).to_contain_text("rows")
    await axe_page.get_by_role("textbox", name="Question", exact=True).fill("orders per customer")
    await axe_page.get_by_role("button", name="Search").click()
    await expect(axe_page.locator("#training-results li.hit").first).to_be_visible()
    assert await run_axe(axe_page) == []
