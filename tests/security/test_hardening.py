"""Finding 14 of the security review (the smaller ones), each reproduced against the composed stack.

Every test here failed on main before the fix: a cross-origin page could change state, the UI had no
CSP/frame protection and kept the token in localStorage, a truncated multipart body was accepted,
any file lying in a task directory was served, a table list could overwrite a pipeline output, and
services starting together could crash or disagree on the encryption key file, and dpctl sent the
token along any redirect and only took it on the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import multiprocessing
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.dpctl.main import run as dpctl_run
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e


async def _create(api: Api, **parameters: Any) -> tuple[int, dict[str, Any]]:
    """POST /tasks; a `table_list_file` is sent as the form's file part (the task gets it at creation)."""
    params = {"db_connection": DB_URL, "business_context": "plain", **parameters}
    file_name = params.pop("table_list_file", None)
    if file_name is None:
        params.setdefault("table_list", ["public.orders"])
        return await api.call(
            "POST", f"{BASE}/tasks", json={"task_type": "complete_workflow", "parameters": params}
        )
    form = aiohttp.FormData()
    form.add_field("parameters", json.dumps(params), content_type="application/json")
    form.add_field("table_list_file", b"public.orders\n", filename=file_name, content_type="text/plain")
    return await api.call("POST", f"{BASE}/tasks", data=form)


async def _finished_task(api: Api, **parameters: Any) -> str:
    status, data = await _create(api, **parameters)
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


async def test_the_fields_around_the_file_are_bounded_too(api: Api) -> None:
    task_id = await _finished_task(api)
    path = f"{BASE}/tasks/{task_id}/upload-table-list"
    headers = {"Content-Type": "multipart/form-data; boundary=XyZ"}
    field = b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n'
    many = field * 25 + _multipart(b"public.orders\n")[0]
    status, data = await api.call("POST", path, data=many, headers=headers)
    assert status == 400 and "at most 20 form fields" in data["data"]["response"], data
    # A huge non-file field after the file, sent chunked (no Content-Length to refuse it up front).
    huge = _multipart(b"public.orders\n", close=False)[0] + b"\r\n" + field.replace(b"x", b"y" * 400_000)

    async def chunked():  # type: ignore[no-untyped-def]
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]
        yield b"--XyZ--\r\n"

    status, data = await api.call("POST", path, data=chunked(), headers=headers)
    assert status == 413, data


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
    # The table list now comes with the create, and such a name is refused there, by either way.
    for name in ("schema_catalog.json", "metadata.txt"):
        status, data = await _create(api, table_list_file=name)
        assert status == 400, data
        assert data["data"]["invalid_params"] == ["table_list_file"]
    status, data = await api.call(
        "POST", f"{BASE}/tasks", json={"parameters": {"db_connection": DB_URL, "business_context": "x",
                                                      "table_list_file": "schema_catalog.json"}}
    )  # fmt: skip
    assert status == 400 and data["data"]["invalid_params"] == ["table_list_file"], data

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


# --- dpctl: the token on redirects and on the command line --------------------------------------


@dataclass
class _Recorder:
    """A tiny HTTP server that records the Authorization header of every request it gets."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)
    redirect_to: str | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Authorization")))
        if self.redirect_to and request.path.endswith("/tasks"):
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        body = {"code": 200, "success": True, "message": "success", "data": {"tasks": [], "total": 0}}
        return web.json_response(body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def servers() -> AsyncIterator[tuple[_Recorder, str, _Recorder, str]]:
    gateway, elsewhere = _Recorder(), _Recorder()
    started = [TestServer(gateway.app()), TestServer(elsewhere.app())]
    for server in started:
        await server.start_server()
    try:
        yield gateway, str(started[0].make_url("")), elsewhere, str(started[1].make_url(""))
    finally:
        for server in started:
            await server.close()


async def _dpctl(*argv: str) -> tuple[int, str, str]:
    def invoke() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = dpctl_run(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(invoke)


async def test_dpctl_does_not_carry_the_token_to_another_origin(
    servers: tuple[_Recorder, str, _Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, gateway_url, elsewhere, elsewhere_url = servers
    monkeypatch.setenv("DP_API_TOKEN", "tok-123")
    # A redirect inside the gateway's origin is followed, token and all.
    gateway.redirect_to = f"{gateway_url}/api/v0/data_pipeline/tasks-moved"
    code, _, err = await _dpctl("--url", gateway_url, "task", "list", "--json")
    assert code == 0, err
    assert gateway.seen[-1] == ("/api/v0/data_pipeline/tasks-moved", "Bearer tok-123")
    # A redirect to another origin is refused: the other server never sees the request or the token.
    gateway.redirect_to = f"{elsewhere_url}/steal"
    code, _, err = await _dpctl("--url", gateway_url, "task", "list")
    assert code == 1  # the server misbehaved (exit 1), not the request
    assert "redirected to another origin" in err
    assert elsewhere.seen == []
    assert "tok-123" not in err


async def test_dpctl_reads_the_token_from_a_file_and_warns_about_token_on_the_command_line(
    servers: tuple[_Recorder, str, _Recorder, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gateway, gateway_url, _, _ = servers
    monkeypatch.delenv("DP_API_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n", encoding="utf-8")
    token_file.chmod(0o600)
    code, _, err = await _dpctl("--url", gateway_url, "--token-file", str(token_file), "task", "list")
    assert code == 0, err
    assert gateway.seen[-1][1] == "Bearer tok-from-file"
    assert "warning" not in err

    token_file.chmod(0o644)
    code, _, err = await _dpctl("--url", gateway_url, "--token-file", str(token_file), "task", "list")
    assert code == 0 and "accessible to other users" in err

    code, _, err = await _dpctl(
        "--url", gateway_url, "--token-file", str(tmp_path / "missing"), "task", "list"
    )
    assert code == 2 and "cannot read the token file" in err

    # Still accepted for old scripts, with a warning (the value is visible in `ps`).
    code, _, err = await _dpctl("--url", gateway_url, "--token", "tok-argv", "task", "list")
    assert code == 0
    assert gateway.seen[-1][1] == "Bearer tok-argv"
    assert "--token is deprecated" in err and "tok-argv" not in err
