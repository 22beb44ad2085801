"""The earlier implementation's guides replayed against the real services (issue #14, items 4-8), as a
client that comes from it calls them: the real steps on the demo database (offline LLM).

On the previous main: offset was ignored (offset paging looped on the first page), logs?limit=N gave
the oldest lines, POST /tasks/query, /logs/query, POST /tasks/{id}/files and /api/v0/database/... were
404, the detail had no current_execution/total_steps/step_name, and file entries no
file_size_formatted/is_readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

TABLES = ["public.stores", "public.employees", "public.customers", "public.orders"]
EDITED_QUESTION = "How many stores are there? (edited by hand)"


async def _upload(
    api: Api, task_id: str, name: str, content: bytes, mode: str | None = None
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name, content_type="application/octet-stream")
    if mode is not None:
        form.add_field("overwrite_mode", mode)
    return await api.call("POST", f"{BASE}/tasks/{task_id}/files", data=form)


async def _executions(env: dict[str, str], task_id: str, step: str) -> list[str]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(
            f"SELECT status FROM {env['DP_DB_SCHEMA']}.data_pipeline_task_executions"
            " WHERE task_id = $1 AND execution_step = $2 ORDER BY id",
            task_id,
            step,
        )
    finally:
        await conn.close()
    return [r["status"] for r in rows]


async def _store_questions(env: dict[str, str], task_id: str) -> list[str]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(
            f"SELECT question FROM {env['DP_TRAINING_SCHEMA']}.training_data WHERE kind = 'question_sql'"
        )
    finally:
        await conn.close()
    return [r["question"] for r in rows]


async def test_download_edit_upload_then_the_next_step_uses_it(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    """The earlier manual-step guide: run the steps, look at the files, download a generated file, edit
    it, upload it (POST /tasks/{id}/files), then run the next step, which must use the edited file."""
    task_id = await real_api.create(
        demo_db_url, business_context="An online retail shop", table_list=TABLES, db_name="shop"
    )
    detail = await real_api.wait(task_id, timeout=240)
    assert detail["status"] == "completed", detail
    # Detail: the earlier keys beside the seed's.
    assert detail["total_steps"] == 4 and detail["current_execution"] is None
    assert [s["step_name"] for s in detail["steps"]] == [s["step"] for s in detail["steps"]]
    assert [s["step_status"] for s in detail["steps"]] == [s["status"] for s in detail["steps"]]

    status, listed = await real_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, listed
    files = {f["file_name"]: f for f in listed["data"]["files"]}
    [pair_name] = [n for n in files if n.startswith("qs_") and n.endswith("_pair.json")]
    assert files[pair_name]["file_size_formatted"].endswith((" B", " KB")) and files[pair_name]["is_readable"]
    assert "table_list.txt" in files and "data_pipeline.log" in files

    # Download, edit, upload (backup mode, the earlier default).
    async with real_api.session.get(real_api.url + f"{BASE}/tasks/{task_id}/files/{pair_name}") as resp:
        assert resp.status == 200
        pairs = json.loads(await resp.read())
    pairs.append({"question": EDITED_QUESTION, "sql": "SELECT count(*) FROM stores;"})
    edited = json.dumps(pairs, ensure_ascii=False, indent=2).encode()
    status, body = await _upload(real_api, task_id, pair_name, edited)
    assert status == 200, body
    uploaded = body["data"]
    assert uploaded["uploaded_file"]["overwrite_mode"] == "backup" and uploaded["written"] is True
    assert uploaded["backup_info"]["backup_filename"] == f"{pair_name}_bak1"
    task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
    assert json.loads((task_dir / pair_name).read_text())[-1]["question"] == EDITED_QUESTION
    assert EDITED_QUESTION not in (task_dir / f"{pair_name}_bak1").read_text()

    # The upload is registered: the list shows its new size and the backup, both download.
    async def registered() -> dict[str, Any] | None:
        _, page = await real_api.call("GET", f"{BASE}/tasks/{task_id}/files")
        shown = {f["file_name"]: f for f in page["data"]["files"]}
        backup = shown.get(f"{pair_name}_bak1")
        if backup and shown[pair_name]["size"] == len((task_dir / pair_name).read_bytes()):
            return shown
        return None

    shown = await eventually(
        registered, timeout=30, interval=0.2, what="the upload and its backup registered"
    )
    assert shown, "the upload and its backup were never registered"
    assert shown[pair_name]["is_primary"] == files[pair_name]["is_primary"]
    assert (
        shown[f"{pair_name}_bak1"]["file_type"] == "backup" and not shown[f"{pair_name}_bak1"]["is_primary"]
    )
    async with real_api.session.get(real_api.url + f"{BASE}/tasks/{task_id}/files/{pair_name}_bak1") as resp:
        assert resp.status == 200

    # What cannot be written: unregistered names, the log, other kinds, bad JSON, a traversal.
    for name, content, refused, reason in (
        ("notes.txt", b"x", 404, "not an output"),
        ("data_pipeline.log", b"x", 404, "not an output"),
        ("../escape.json", b"[]", 400, "bare name"),
        (pair_name, b"{not json", 400, "not valid JSON"),
        (pair_name, b'[{"question": 1}]', 400, "pair file"),
        (pair_name, b"\x00\x01", 400, "not text"),
    ):
        status, body = await _upload(real_api, task_id, name, content, "replace")
        assert status == refused and reason in body["data"]["response"], (name, body)
    status, body = await _upload(real_api, task_id, pair_name, edited, "sideways")
    assert status == 400 and body["data"]["invalid_params"] == ["overwrite_mode"]
    status, body = await _upload(real_api, task_id, pair_name, edited, "skip")
    assert status == 200 and body["data"]["written"] is False
    assert not (task_dir / f"{pair_name}_bak2").exists()

    # The load step again, by name as the earlier guide runs it: it loads the edited pairs.
    assert EDITED_QUESTION not in await _store_questions(real_env, task_id)
    status, body = await real_api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/execute",
        json={"execution_mode": "step", "step_name": "training_load"},
    )
    assert status == 202, body

    async def loaded() -> bool:
        runs = await _executions(real_env, task_id, "training_load")
        return len(runs) == 2 and runs[-1] in ("completed", "failed")

    await eventually(loaded, timeout=120, interval=0.2, what="the second training_load to end")
    assert (await _executions(real_env, task_id, "training_load"))[-1] == "completed"
    assert EDITED_QUESTION in await _store_questions(real_env, task_id)

    # Logs: the newest N in time order; the upload is in the task's log.
    status, body = await real_api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"limit": "5"})
    assert status == 200, body
    newest = body["data"]["logs"]
    status, everything = await real_api.call(
        "GET", f"{BASE}/tasks/{task_id}/logs", params={"limit": "1000", "order": "asc"}
    )
    assert [line["id"] for line in newest] == [line["id"] for line in everything["data"]["logs"][-5:]]
    assert any("replaced by an upload" in line["message"] for line in everything["data"]["logs"])
    status, body = await real_api.call(
        "POST", f"{BASE}/tasks/{task_id}/logs/query", json={"page": 1, "page_size": 3, "keyword": "upload"}
    )
    assert status == 200 and body["data"]["pagination"]["total"] >= 1, body

    # Task queries as the earlier UI made them.
    status, body = await real_api.call(
        "POST", f"{BASE}/tasks/query", json={"db_name": "shop", "status": "completed", "page_size": 50}
    )
    assert status == 200 and task_id in [t["task_id"] for t in body["data"]["tasks"]], body


async def test_offset_paging_and_database_tools_at_the_old_paths(
    real_api: Api,  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    for _ in range(3):
        await real_api.create(
            demo_db_url,
            table_list=["public.stores"],
            db_name="paging",
            single_step=1,
            execution_mode="single",
        )
    seen: list[str] = []
    offset = 0
    while True:  # the earlier clients' loop: it ends because offset is honoured
        status, body = await real_api.call(
            "GET", f"{BASE}/tasks", params={"db_name": "paging", "limit": "2", "offset": str(offset)}
        )
        assert status == 200 and body["data"]["offset"] == offset and body["data"]["limit"] == 2, body
        if not body["data"]["tasks"]:
            break
        seen += [t["task_id"] for t in body["data"]["tasks"]]
        offset += 2
        assert offset <= 10, "offset paging does not end"
    assert len(seen) == len(set(seen)) == 3

    status, body = await real_api.call(
        "POST",
        "/api/v0/database/tables",
        json={"db_connection": demo_db_url, "schema": "public", "table_name_pattern": "order*"},
    )
    assert status == 200 and body["data"]["tables"] == ["public.order_items", "public.orders"], body
    status, body = await real_api.call(
        "POST",
        "/api/v0/database/table/ddl",
        json={"db_connection": demo_db_url, "table": "public.orders", "business_context": "a shop"},
    )
    assert status == 200, body
    assert "orders" in body["data"]["ddl"] and "orders" in body["data"]["md"]
