"""Finding 14 of the security review (the smaller ones), each reproduced against the composed stack.

Every test here failed on main before the fix: a cross-origin page could change state, the UI had no
CSP/frame protection and kept the token in localStorage, a truncated multipart body was accepted,
any file lying in a task directory was served, a table list could overwrite a pipeline output, and
services starting together could crash or disagree on the encryption key file.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e


async def _finished_task(api: Api, **parameters: Any) -> str:
    body = {
        "task_type": "complete_workflow",
        "parameters": {"db_connection": DB_URL, "business_context": "plain", **parameters},
    }
    if "table_list_file" not in parameters:
        body["parameters"].setdefault("table_list", ["public.orders"])
    status, data = await api.call("POST", f"{BASE}/tasks", json=body)
    assert status in (201, 202), data
    task_id = data["data"]["task_id"]
    await api.wait(task_id)
    return task_id


def _multipart(content: bytes, *, close: bool = True, boundary: str = "XyZ") -> tuple[bytes, dict[str, str]]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="tables.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + content
    if close:
        body += f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --- CSRF: cross-origin state changes -----------------------------------------------------------


async def test_cross_origin_upload_is_refused_same_origin_and_scripts_work(api: Api, data_dir: Path) -> None:
    task_id = await _finished_task(api)
    target = data_dir / task_id / "table_list.txt"
    body, headers = _multipart(b"public.evil\n")
    path = f"{BASE}/tasks/{task_id}/upload-table-list"

    # A page on another site submits a form to the gateway (no preflight for multipart/form-data).
    status, data = await api.call(
        "POST", path, data=body, headers={**headers, "Origin": "http://evil.example"}
    )
    assert status == 403, data
    assert data["data"]["error_type"] == "forbidden"
    assert "evil.example" in data["data"]["response"]
    assert "public.evil" not in (target.read_text() if target.exists() else "")

    for hostile in (
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": f"{api.url}.evil.example"},
    ):
        status, data = await api.call("POST", path, data=body, headers={**headers, **hostile})
        assert status == 403, (hostile, data)

    # JSON routes too: cancelling or deleting someone's task from a foreign page.
    status, _ = await api.call(
        "DELETE", f"{BASE}/tasks/{task_id}", headers={"Origin": "https://evil.example"}
    )
    assert status == 403

    # The UI itself (same origin) and scripts without Origin are unaffected.
    status, data = await api.call("POST", path, data=body, headers={**headers, "Origin": api.url})
    assert status == 200, data
    status, data = await api.call("POST", path, data=body, headers=headers)
    assert status == 200, data
    assert target.read_text() == "public.evil\n"
    # Reads are never refused for their Origin (the UI's GETs carry none anyway).
    status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}", headers={"Origin": "http://evil.example"})
    assert status == 200


# --- browser headers and the UI -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/static/app.js", "/static/app.css", f"{BASE}/tasks", f"{BASE}/tasks/task_nope_x", "/no/route"],
)
async def test_every_response_carries_the_browser_protections(api: Api, path: str) -> None:
    async with api.session.get(api.url + path) as resp:
        headers = resp.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "no-referrer"


async def test_the_ui_needs_no_inline_code_and_keeps_the_token_out_of_local_storage(api: Api) -> None:
    async with api.session.get(api.url + "/") as resp:
        html = await resp.text()
    assert resp.status == 200
    # What the CSP would block: inline <script>, <style>, style="…" and on…="…" attributes.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert '<link rel="stylesheet" href="/static/app.css">' in html
    async with api.session.get(api.url + "/static/app.js") as resp:
        script = await resp.text()
    assert "sessionStorage.setItem(TOKEN_KEY" in script
    assert not re.search(r"localStorage\.(setItem|getItem)", script)


# --- multipart ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # The file part, then the stream just ends: no boundary after it at all.
        _multipart(b"public.orders\n", close=False)[0],
        # The part is closed but the final `--boundary--` never comes.
        _multipart(b"public.orders\n", close=False)[0] + b"\r\n--XyZ\r\n",
    ],
    ids=["no-boundary-after-part", "no-closing-boundary"],
)
async def test_a_multipart_body_without_its_closing_boundary_is_rejected(
    api: Api, data_dir: Path, body: bytes
) -> None:
    task_id = await _finished_task(api)
    table_list = data_dir / task_id / "table_list.txt"
    status, _ = await api.call("POST", f"{BASE}/tasks/{task_id}/table-list", json={"tables": ["public.kept"]})
    assert status == 200
    before = table_list.read_bytes()
    status, data = await api.call(
        "POST",
        f"{BASE}/tasks/{task_id}/upload-table-list",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert status == 400, data
    assert data["data"]["invalid_params"] == ["body"]
    assert "closing boundary" in data["data"]["response"]
    assert table_list.read_bytes() == before


# --- downloads ----------------------------------------------------------------------------------


async def test_only_registered_files_the_log_and_the_table_list_download(api: Api, data_dir: Path) -> None:
    task_id = await _finished_task(api)
    directory = data_dir / task_id
    # Files nobody registered: an editor's backup, a dump a step left behind, a copied credential.
    for stray in ("notes.bak", "credentials.json", "dump.sql"):
        (directory / stray).write_text("secret material\n", encoding="utf-8")
        for route in ("files/download", "files"):
            status, data = await api.call("GET", f"{BASE}/tasks/{task_id}/{route}/{stray}")
            assert status == 404, (stray, route, data)
            assert "secret material" not in str(data)

    status, data = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/qa_generation.txt")
    assert status == 200 and data["raw"] == f"qa_generation output for {task_id}\n"
    status, _ = await api.call("POST", f"{BASE}/tasks/{task_id}/table-list", json={"tables": ["public.a"]})
    assert status == 200
    status, data = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/table_list.txt")
    assert status == 200 and data["raw"] == "public.a\n"
    log = directory / "data_pipeline.log"
    await asyncio.to_thread(
        wait_until, lambda: log.exists() and "qa_generation done" in log.read_text(), what="task log written"
    )
    status, data = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/data_pipeline.log")
    assert status == 200 and "qa_generation done" in data["raw"]


# --- table-list names ---------------------------------------------------------------------------


async def test_a_table_list_cannot_overwrite_a_pipeline_output(api: Api, data_dir: Path) -> None:
    # A task whose table_list_file names step 1's catalog: the upload used to replace the catalog.
    task_id = await _finished_task(api, table_list_file="schema_catalog.json")
    catalog = data_dir / task_id / "schema_catalog.json"
    catalog.write_text('{"tables": []}\n', encoding="utf-8")
    for kwargs in (
        {"json": {"tables": ["public.orders"]}},
        dict(zip(("data", "headers"), _multipart(b"public.orders\n"), strict=True)),
    ):
        route = "table-list" if "json" in kwargs else "upload-table-list"
        status, data = await api.call("POST", f"{BASE}/tasks/{task_id}/{route}", **kwargs)
        assert status == 409, data
        assert data["data"]["invalid_params"] == ["table_list_file"]
        assert catalog.read_text() == '{"tables": []}\n'

    # A registered output by another name (the scripted step 1 registers ddl_generation.txt).
    task_id = await _finished_task(api, table_list_file="ddl_generation.txt")
    output = data_dir / task_id / "ddl_generation.txt"
    before = output.read_text()
    status, data = await api.call("POST", f"{BASE}/tasks/{task_id}/table-list", json={"tables": ["public.x"]})
    assert status == 409, data
    assert output.read_text() == before


# --- the encryption-key file --------------------------------------------------------------------


def _start_together(directory: str, barrier: Any, results: Any) -> None:
    from shared.secrets import load_or_create_key

    barrier.wait()
    try:
        results.put(("key", load_or_create_key(None, Path(directory))))
    except Exception as exc:  # the old code raised FileExistsError or read an empty key
        results.put(("error", repr(exc)))


def test_services_starting_together_share_one_key_file() -> None:
    context = multiprocessing.get_context("fork")
    for _ in range(15):
        with tempfile.TemporaryDirectory() as directory:
            barrier, results = context.Barrier(6), context.Queue()
            workers = [
                context.Process(target=_start_together, args=(directory, barrier, results)) for _ in range(6)
            ]
            for w in workers:
                w.start()
            outcomes = [results.get(timeout=30) for _ in workers]
            for w in workers:
                w.join(timeout=30)
            assert {kind for kind, _ in outcomes} == {"key"}, outcomes
            assert len({key for _, key in outcomes}) == 1, outcomes
            key_file = Path(directory) / ".encryption_key"
            assert key_file.read_bytes() == outcomes[0][1]
            assert key_file.stat().st_mode & 0o077 == 0
            assert [p.name for p in Path(directory).iterdir()] == [".encryption_key"]  # no temp files left
