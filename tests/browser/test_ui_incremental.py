"""Issue 12 part 2 in the browser: "Changes since the last run" in the create form asks GET /database/diff
for the connection typed in, says how many tables changed since the newest completed task on it, and a
ticked offer makes the create an incremental run (incremental_from: that task)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenUi, run_axe
from tests.support.api import Api
from tests.support.demo_db import scratch_db_url  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_the_form_offers_an_incremental_run_when_tables_changed(
    open_ui: OpenUi,
    ui_url: str,
    api: Api,
    data_dir: Path,
    scratch_db_url: str,  # noqa: F811
) -> None:
    conn = await asyncpg.connect(scratch_db_url)
    try:
        await conn.execute("CREATE TABLE t_one (id integer PRIMARY KEY, label text)")
        earlier = await api.create(scratch_db_url, "shop", table_list=["public.t_one"])
        assert (await api.wait(earlier))["status"] == "completed"
        # What a real step 1 leaves (the composed stack's steps are fakes): a fingerprint per table and
        # the tables of its schemas; t_one's fingerprint is another one, so t_one reads as changed.
        catalog = {
            "db_name": "scratch",
            "business_context": "shop",
            "tables": [{"name": "t_one", "columns": [{"name": "id", "data_type": "integer"}]}],
            "fingerprints": {"public.t_one": "0" * 64},
            "schema_tables": ["public.t_one"],
        }
        (data_dir / earlier / "schema_catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
        await conn.execute("CREATE TABLE t_two (id integer PRIMARY KEY)")
    finally:
        await conn.close()

    page, _ = await open_ui(ui_url)
    form = page.locator("#create")
    await form.get_by_label("Database connection").fill(scratch_db_url)
    await page.get_by_role("button", name="Changes since the last run").click()
    offer = page.get_by_label(re.compile(r"2 table\(s\) changed since task"))
    await expect(offer).to_be_visible()
    await expect(page.locator("#incremental-hint")).to_contain_text(
        f"since task {earlier} (1 changed, 1 new, 0 dropped: public.t_one, public.t_two)"
    )
    await offer.check()
    await form.get_by_label("Tables").fill("public.t_one\npublic.t_two")
    await form.get_by_label("Business context").fill("shop")
    await form.get_by_role("button", name="Create").click()
    message = page.locator("#create-msg")
    await expect(message).to_contain_text("created task_")
    created = (await message.text_content() or "").split("created ", 1)[1].split()[0]
    detail = await api.task(created)
    assert detail["parameters"]["incremental_from"] == earlier

    # The offer passes axe-core (on a page without the CSP, which would refuse axe's script).
    axe_page, _ = await open_ui(ui_url, bypass_csp=True)
    await axe_page.locator("#create").get_by_label("Database connection").fill(scratch_db_url)
    await axe_page.get_by_role("button", name="Changes since the last run").click()
    await expect(axe_page.locator("#f-incremental")).to_be_visible()
    assert await run_axe(axe_page) == []

    # Typing another connection withdraws the offer.
    await form.get_by_label("Database connection").fill(scratch_db_url + "?x=1")
    await expect(page.locator("#f-incremental")).to_have_count(0)
