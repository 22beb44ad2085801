"""dpctl against a small in-test gateway that speaks the API's envelope: arguments, formatting, --json,
error reasons and exit codes, and following a task over server-sent events. The end-to-end test
against the real gateway lives with the e2e tier.

The fake is held to the real gateway's OpenAPI document: every response it sends is validated against
the operation's schema, and a request the document refuses must not get a 2xx from it
(tests/support/openapi_contract.py); the `gateway` fixture fails the test on any drift."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.api_gateway.envelope import envelope as gateway_envelope
from services.dpctl.client import parse_sse
from services.dpctl.main import run
from tests.support.openapi_contract import ContractChecker, gateway_document

PREFIX = "/api/v0/data_pipeline"
TOKEN = "s3cret"
STEPS = ["ddl_generation", "qa_generation", "sql_validation", "training_load"]
T1, T2 = "task_20250101_000000_t1", "task_20250101_000000_t2"  # ids the gateway accepts
# Every response the fake sends is checked against the document the real gateway serves.
CONTRACT = ContractChecker(gateway_document())


def envelope(status: int, response: str, /, **data: Any) -> web.Response:
    """The real gateway's envelope (services/api_gateway/envelope.py) around `data`."""
    return web.json_response(gateway_envelope(status, response, data), status=status)


def error(status: int, error_type: str, reason: str, **extra: Any) -> web.Response:
    return envelope(status, reason, error_type=error_type, **extra)


def task_record(
    task_id: str, status: str = "pending", *, age_days: float = 0, **extra: Any
) -> dict[str, Any]:
    """A task as GET /tasks/{task_id} shows it (TaskDetail); the list shows the same (TaskSummary + more)."""
    moment = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
    finished = status in {"completed", "failed", "cancelled"}
    step_state = "completed" if status == "completed" else "pending"
    steps = [
        {
            "step": step,
            "step_name": step,
            "step_number": number,
            "status": step_state,
            "step_status": step_state,
            "started_at": None,
            "completed_at": None,
            "duration": None,
            "error_message": None,
            "attempts": 0,
            "progress": 100 if step_state == "completed" else 0,
            "executions": [],
        }
        for number, step in enumerate(STEPS, start=1)
    ]
    return {
        "task_id": task_id,
        "task_name": extra.pop("task_name", None),
        "task_type": "complete_workflow",
        "status": status,
        "progress": 100 if status == "completed" else 0,
        "current_step": None,
        "step_status": {s: step_state for s in STEPS},
        "execution_mode": "complete",
        "single_step": None,
        "db_name": "shop",
        "business_context": "a shop",
        "created_by": "api",
        "created_at": moment,
        "started_at": None if status == "pending" else moment,
        "completed_at": moment if finished else None,
        "updated_at": moment,
        "duration": 0.0 if finished else None,
        "error_message": None,
        "output_directory": f"/data/tasks/{task_id}",
        "parameters": {"db_connection": "postgresql://u:***@h/shop"},
        "result": None,
        "error_step": None,
        "step_stats": {},
        "plan": [
            {"step": step, "step_number": number, "runs": True, "status": step_state, "reason": None}
            for number, step in enumerate(STEPS, start=1)
        ],
        "steps": steps,
        "step_details": steps,
        "total_steps": len(STEPS),
        "current_execution": None,
        **extra,
    }


@dataclass
class FakeGateway:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    finish_as: str = "completed"
    deleted: list[str] = field(default_factory=list)
    next_id: int = 0
    watched: dict[str, asyncio.Event] = field(default_factory=dict)  # the client has read the task
    violations: list[str] = field(default_factory=list)  # where the fake strayed from the OpenAPI document

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.contract, self.auth])
        r = app.router
        r.add_post(f"{PREFIX}/tasks", self.create)
        r.add_get(f"{PREFIX}/tasks", self.list)
        r.add_get(f"{PREFIX}/tasks/{{id}}", self.show)
        r.add_delete(f"{PREFIX}/tasks/{{id}}", self.delete)
        r.add_post(f"{PREFIX}/tasks/{{id}}/execute", self.execute)
        r.add_post(f"{PREFIX}/tasks/{{id}}/cancel", self.cancel)
        r.add_get(f"{PREFIX}/tasks/{{id}}/stream", self.stream)
        r.add_get(f"{PREFIX}/tasks/{{id}}/logs", self.logs)
        r.add_get(f"{PREFIX}/tasks/{{id}}/files", self.files)
        r.add_get(f"{PREFIX}/tasks/{{id}}/files/download/{{name}}", self.download)
        r.add_post(f"{PREFIX}/database/tables", self.tables)
        return app

    @web.middleware
    async def contract(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Check every exchange against the real gateway's OpenAPI document (see `gateway` below)."""
        sent = await request.json() if request.body_exists else None
        refused = CONTRACT.request_problems(
            request.method, request.path, dict(request.query), sent, request.body_exists
        )
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # the router's own 404/405: the real gateway never sends those
            response = exc
        if refused and response.status < 400:
            self.violations.extend(f"accepted what the gateway refuses: {p}" for p in refused)
        body = response.body if isinstance(response, web.Response) else None  # streams: status and type
        self.violations.extend(
            CONTRACT.response_problems(
                request.method,
                request.path,
                response.status,
                response.content_type,
                body if isinstance(body, bytes) else None,
            )
        )
        return response

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.body_exists else None
        self.requests.append((request.method, request.path_qs, body))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return error(401, "unauthorized", "a valid bearer token is required")
        return await handler(request)

    def _task(self, request: web.Request) -> dict[str, Any] | None:
        return self.tasks.get(request.match_info["id"])

    async def create(self, request: web.Request) -> web.Response:
        params = (await request.json()).get("parameters", {})
        missing = [k for k in ("db_connection", "business_context") if k not in params]
        if "table_list" not in params and "table_list_file" not in params:
            missing.append("table_list_file")
        if missing:
            return error(
                400,
                "missing_required_params",
                f"missing parameters: {', '.join(missing)}",
                missing_params=missing,
            )
        if not str(params["business_context"]).strip():  # as the real gateway: a blank context is refused
            return error(
                400,
                "invalid_params",
                "business_context: must not be blank",
                invalid_params=["business_context"],
            )
        self.next_id += 1
        task_id = f"task_20250101_000000_{self.next_id:04d}"
        self.tasks[task_id] = task_record(task_id, task_name=params.get("task_name"))
        return envelope(
            201,
            "task created",
            task_id=task_id,
            status="pending",
            created_at=datetime.now(UTC).isoformat(),
            output_directory=f"/data/tasks/{task_id}",
        )

    async def list(self, request: web.Request) -> web.Response:
        wanted = set(filter(None, request.query.get("status", "").split(",")))
        tasks = [t for t in self.tasks.values() if not wanted or t["status"] in wanted]
        limit = int(request.query.get("limit", 20))
        start = int(request.query.get("cursor", 0))
        page = tasks[start : start + limit]
        more = start + limit < len(tasks)
        return envelope(
            200,
            "tasks",
            tasks=page,
            next_cursor=str(start + limit) if more else None,
            total=len(tasks),
            limit=limit,
            offset=None,  # paged by cursor
        )

    async def show(self, request: web.Request) -> web.Response:
        task = self._task(request)
        if task is None:
            return error(404, "resource_not_found", f"task {request.match_info['id']} does not exist")
        self.watched.setdefault(task["task_id"], asyncio.Event()).set()
        return envelope(200, "task", **task)

    async def delete(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if self.tasks.pop(task_id, None) is None:
            return error(404, "resource_not_found", f"task {task_id} does not exist")
        self.deleted.append(task_id)
        return envelope(200, "deleted", task_id=task_id, deleted=True)

    async def execute(self, request: web.Request) -> web.Response:
        task = self._task(request)
        if task is None:
            return error(404, "resource_not_found", "no such task")
        if task["status"] == "in_progress":
            return error(409, "conflict", "the task is already running")
        body = await request.json()
        return envelope(
            202,
            "scheduled",
            task_id=task["task_id"],
            command="run_step",
            command_id="c1",
            step=body.get("step_name") or (STEPS[body["single_step"] - 1] if "single_step" in body else None),
        )

    async def cancel(self, request: web.Request) -> web.Response:
        return error(500, "internal_error", "the broker did not confirm the command")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        task = self._task(request)
        assert task is not None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(kind: str, **payload: Any) -> None:
            data = {"type": kind, "task_id": task["task_id"], **payload}
            await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

        await response.write(b": keep-alive\n\n")
        # The task runs on once the follower has read its state (as it does after opening the stream).
        await asyncio.wait_for(self.watched.setdefault(task["task_id"], asyncio.Event()).wait(), 10)
        for step in STEPS:
            await send("step_started", step=step, execution_id="e", attempt=1, runner_id="r1")
            await send("step_progress", step=step, execution_id="e", percent=50.0, message="half way")
            await send("log_emitted", level="INFO", message=f"{step} working", step=step)
            if step == "sql_validation" and self.finish_as == "failed":
                await send("step_failed", step=step, execution_id="e", error="3 of 10 valid")
                await send("task_finished", status="failed", error_message="validation below threshold")
                return response
            await send("step_succeeded", step=step, execution_id="e")
        task["status"] = "completed"
        await send("task_finished", status="completed")
        return response

    async def logs(self, request: web.Request) -> web.StreamResponse:
        lines = [
            {
                "id": 1,
                "event_id": "00000000-0000-0000-0000-000000000001",
                "timestamp": "2025-01-01T00:00:01+00:00",
                "level": "INFO",
                "message": "started",
                "step_name": "ddl_generation",
                "execution_id": None,
                "module": None,
                "function": None,
                "extra": {},
            },
            {
                "id": 2,
                "event_id": "00000000-0000-0000-0000-000000000002",
                "timestamp": "2025-01-01T00:00:02+00:00",
                "level": "ERROR",
                "message": "boom",
                "step_name": "qa_generation",
                "execution_id": None,
                "module": None,
                "function": None,
                "extra": {},
            },
        ]
        if request.query.get("follow") == "true":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for line in lines:
                await response.write(f"event: log\nid: {line['id']}\ndata: {json.dumps(line)}\n\n".encode())
            self.tasks[request.match_info["id"]]["status"] = "completed"
            return response
        if "cursor" not in request.query:
            return envelope(200, "logs", logs=lines[:1], next_cursor="c2", total=2)
        return envelope(200, "logs", logs=lines[1:], next_cursor=None, total=2)

    async def files(self, request: web.Request) -> web.Response:
        files = [
            {
                "file_name": "orders.ddl",
                "file_type": "ddl",
                "file_path": "orders.ddl",
                "size": 2048,
                "file_size": 2048,
                "sha256": None,
                "is_primary": False,
                "is_downloadable": True,
                "step": "ddl_generation",
                "description": None,
                "created_at": "2025-01-01T00:00:00+00:00",
                "modified_at": None,
                "download_url": f"{PREFIX}/tasks/{request.match_info['id']}/files/download/orders.ddl",
            }
        ]
        return envelope(200, "files", files=files, total=1)

    async def download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] != "orders.ddl":
            return error(404, "resource_not_found", "no such file")
        return web.Response(body=b"CREATE TABLE orders (id int);\n", content_type="application/octet-stream")

    async def tables(self, request: web.Request) -> web.Response:
        tables = [
            {"schema": "public", "table_name": "orders", "row_count": 10},
            {"schema": "public", "table_name": "users", "row_count": 3},
        ]
        return envelope(200, "tables", tables=tables, total=2, schema="public")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakeGateway, str]]:
    fake = FakeGateway()
    server = TestServer(fake.app())
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
    assert not fake.violations, "the fake gateway strayed from the OpenAPI document:\n" + "\n".join(
        fake.violations
    )


async def dpctl(url: str, *argv: str, token: str | None = TOKEN) -> Result:
    def invoke() -> Result:
        out, err = io.StringIO(), io.StringIO()
        with (
            tempfile.TemporaryDirectory() as directory,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            # The token as a user should pass it: from a file only they can read (not `--token`).
            token_args: list[str] = []
            if token:
                token_file = Path(directory) / "token"
                token_file.write_text(token, encoding="utf-8")
                token_file.chmod(0o600)
                token_args = ["--token-file", str(token_file)]
            try:
                code = run(["--url", url, *token_args, *argv])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        return Result(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(invoke)


async def test_create_sends_every_api_parameter(gateway: tuple[FakeGateway, str], tmp_path: Path) -> None:
    fake, url = gateway
    table_list = tmp_path / "tables.txt"
    table_list.write_text("public.orders\n# a comment\n\nusers  # inline\n", encoding="utf-8")
    result = await dpctl(
        url, "task", "create", "--db-connection", "postgresql://u:p@h/shop", "--table-list", str(table_list),
        "--business-context", "a shop", "--task-name", "nightly", "--db-name", "shop", "--single-step", "2",
        "--skip-validation", "--disable-llm-repair", "--no-modify-file", "--skip-training-load",
        "--max-llm-tokens", "5000", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["task_id"].startswith("task_")
    _, path, body = fake.requests[-1]
    assert path == f"{PREFIX}/tasks"
    assert body == {
        "task_type": "complete_workflow",
        "parameters": {
            "db_connection": "postgresql://u:p@h/shop",
            "business_context": "a shop",
            "table_list": ["public.orders", "users"],
            "task_name": "nightly",
            "db_name": "shop",
            "execution_mode": "single",
            "single_step": 2,
            "enable_sql_validation": False,
            "enable_llm_repair": False,
            "modify_original_file": False,
            "enable_training_data_load": False,
            "max_llm_tokens": 5000,
        },
    }


async def test_create_with_tables_and_human_output(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    result = await dpctl(
        url, "task", "create", "--db-connection", "x", "--tables", "a, b,c", "--business-context", "ctx"
    )
    assert result.code == 0
    assert "created task_" in result.out
    assert fake.requests[-1][2]["parameters"]["table_list"] == ["a", "b", "c"]


async def test_create_no_wait_asks_the_gateway_not_to_wait_for_the_record(
    gateway: tuple[FakeGateway, str],
) -> None:
    fake, url = gateway
    args = ("task", "create", "--db-connection", "x", "--tables", "a", "--business-context", "ctx")
    assert (await dpctl(url, *args, "--no-wait")).code == 0
    assert fake.requests[-1][1] == f"{PREFIX}/tasks?wait=0"
    assert (await dpctl(url, *args)).code == 0
    assert fake.requests[-1][1] == f"{PREFIX}/tasks"  # the server's default wait


async def test_api_error_reason_and_exit_code_2(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    result = await dpctl(
        url, "task", "create", "--db-connection", "x", "--tables", "a", "--business-context", ""
    )
    assert result.code == 2  # refused with its reason, as the real gateway refuses it
    assert "business_context: must not be blank" in result.err
    result = await dpctl(url, "task", "show", "task_20250101_000000_nope")
    assert result.code == 2
    assert "task task_20250101_000000_nope does not exist" in result.err


async def test_missing_params_are_listed(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    from services.dpctl.client import GatewayClient

    client = GatewayClient(url, TOKEN)
    with pytest.raises(Exception) as caught:
        await asyncio.to_thread(client.request, "POST", "/tasks", body={"parameters": {}})
    assert caught.value.status == 400  # type: ignore[attr-defined]
    assert caught.value.details["missing_params"] == ["db_connection", "business_context", "table_list_file"]  # type: ignore[attr-defined]


async def test_unauthorized_without_token(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    result = await dpctl(url, "task", "list", token=None)
    assert result.code == 2
    assert "bearer token is required" in result.err


async def test_server_error_is_exit_1_and_json_errors_go_to_stderr(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "in_progress")
    result = await dpctl(url, "task", "cancel", T1, "--json")
    assert result.code == 1
    assert json.loads(result.err) == {
        "error": "the broker did not confirm the command",
        "status": 500,
        "error_type": "internal_error",
    }


async def test_connection_refused_is_exit_3() -> None:
    result = await dpctl("http://127.0.0.1:9", "task", "list")
    assert result.code == 3
    assert "cannot reach the gateway at http://127.0.0.1:9" in result.err


async def test_usage_errors_exit_2(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    result = await dpctl(url, "task", "create", "--tables", "a")
    assert result.code == 2
    assert "required" in result.err


async def test_list_table_pages_and_json(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    for i in range(3):
        fake.tasks[f"task_20250101_000000_{i}"] = task_record(
            f"task_20250101_000000_{i}", "completed", task_name=f"name {i}"
        )
    result = await dpctl(url, "task", "list", "--limit", "2")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["TASK", "STATUS", "PROGRESS"]
    assert "task_20250101_000000_0" in lines[1] and "100%" in lines[1] and "name 0" in lines[1]
    assert "--cursor 2" in result.out
    everything = await dpctl(url, "task", "list", "--limit", "2", "--all", "--json")
    assert [t["task_id"] for t in everything.json()["tasks"]] == [
        "task_20250101_000000_0",
        "task_20250101_000000_1",
        "task_20250101_000000_2",
    ]


async def test_show_prints_steps_and_masked_parameters(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "completed")
    result = await dpctl(url, "task", "show", T1)
    assert result.code == 0
    assert "Status:" in result.out and "completed" in result.out
    assert "ddl_generation" in result.out
    assert "postgresql://u:***@h/shop" in result.out


async def test_logs_follow_cursor_and_json(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "in_progress")
    result = await dpctl(url, "task", "logs", T1, "--level", "info", "--step", "2")
    assert result.code == 0
    assert result.out.splitlines()[1].split()[2:] == ["ERROR", "[qa_generation]", "boom"]
    assert "level=INFO" in fake.requests[-1][1] and "step=2" in fake.requests[-1][1]
    streamed = await dpctl(url, "task", "logs", T1, "--follow", "--json")
    assert streamed.code == 0
    assert [json.loads(line)["message"] for line in streamed.out.splitlines()] == ["started", "boom"]
    followed = [path for _, path, _ in fake.requests if "follow=true" in path]
    assert len(followed) == 1
    # Once the task is over, what was stored after the last streamed line (here: nothing new).
    assert "after=2" in fake.requests[-1][1] and "follow" not in fake.requests[-1][1]


async def test_files_and_download(gateway: tuple[FakeGateway, str], tmp_path: Path) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "completed")
    listed = await dpctl(url, "task", "files", T1)
    assert "orders.ddl" in listed.out and "2.0 KiB" in listed.out
    target = tmp_path / "out.sql"
    got = await dpctl(url, "task", "download", T1, "orders.ddl", "-o", str(target))
    assert got.code == 0
    assert target.read_text() == "CREATE TABLE orders (id int);\n"
    missing = await dpctl(url, "task", "download", T1, "nope.txt", "-o", str(tmp_path / "nope.txt"))
    assert missing.code == 2 and "no such file" in missing.err
    assert not list(tmp_path.glob("nope*"))


async def test_run_step_by_number_and_name_and_conflict(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "completed")
    by_number = await dpctl(url, "task", "run-step", T1, "3", "--force")
    assert by_number.code == 0 and "sql_validation" in by_number.out
    assert fake.requests[-1][2] == {"execution_mode": "single", "force": True, "single_step": 3}
    await dpctl(url, "task", "run-step", T1, "training_load")
    assert fake.requests[-1][2] == {"execution_mode": "single", "force": False, "step_name": "training_load"}
    fake.tasks[T1]["status"] = "in_progress"
    busy = await dpctl(url, "task", "run-step", T1, "1")
    assert busy.code == 2 and "already running" in busy.err


async def test_run_step_takes_a_range_and_create_takes_from_and_to(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "completed")
    result = await dpctl(url, "task", "run-step", T1, "2-3")
    assert result.code == 0, result.err
    assert fake.requests[-1][2] == {"from_step": 2, "to_step": 3, "force": False}
    await dpctl(url, "task", "run-step", T1, "sql_validation-training_data_load", "--force")
    assert fake.requests[-1][2] == {
        "from_step": "sql_validation",
        "to_step": "training_data_load",
        "force": True,
    }
    result = await dpctl(
        url, "task", "create", "--db-connection", "x", "--tables", "a", "--business-context", "ctx",
        "--from-step", "1", "--to-step", "qa_generation",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert fake.requests[-1][2]["parameters"]["from_step"] == 1
    assert fake.requests[-1][2]["parameters"]["to_step"] == "qa_generation"


async def test_show_names_the_steps_a_run_leaves_out(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    record = task_record(T1, "completed")
    for entry in record["plan"][2:]:
        entry.update(runs=False, status="skipped", reason="outside the requested range: steps 1-2")
    fake.tasks[T1] = record
    result = await dpctl(url, "task", "show", T1)
    assert result.code == 0, result.err
    assert "Not in this run:" in result.out
    assert "  sql_validation: outside the requested range: steps 1-2" in result.out
    assert "  ddl_generation:" not in result.out


async def test_delete_several_reports_each(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks[T1] = task_record(T1, "completed")
    result = await dpctl(url, "task", "delete", T1, T2)
    assert result.code == 2
    assert f"{T1}: deleted" in result.out and f"{T2}: error" in result.out
    assert fake.deleted == [T1]


async def test_prune_deletes_only_old_finished_tasks(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.tasks["task_20250101_000000_olddone"] = task_record(
        "task_20250101_000000_olddone", "completed", age_days=40
    )
    fake.tasks["task_20250101_000000_oldfailed"] = task_record(
        "task_20250101_000000_oldfailed", "failed", age_days=31
    )
    fake.tasks["task_20250101_000000_newdone"] = task_record(
        "task_20250101_000000_newdone", "completed", age_days=1
    )
    fake.tasks["task_20250101_000000_oldrunning"] = task_record(
        "task_20250101_000000_oldrunning", "in_progress", age_days=50
    )
    dry = await dpctl(url, "task", "prune", "--older-than-days", "30")
    assert dry.code == 0 and "would delete" in dry.out and fake.deleted == []
    done = await dpctl(url, "task", "prune", "--older-than-days", "30", "--yes", "--json")
    assert done.code == 0
    assert sorted(fake.deleted) == ["task_20250101_000000_olddone", "task_20250101_000000_oldfailed"]
    assert done.json()["deleted"] == 2


async def test_create_follow_shows_progress_and_logs_then_exit_0(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    result = await dpctl(
        url, "task", "create", "--db-connection", "x", "--tables", "a", "--business-context", "c", "--follow"
    )
    assert result.code == 0, result.err
    assert "training_load" in result.out and "100.0%" in result.out
    assert "[ddl_generation] ddl_generation working" in result.out
    assert result.out.rstrip().endswith(": completed")


async def test_create_follow_failed_task_exits_1(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.finish_as = "failed"
    result = await dpctl(
        url,
        "--json",
        "task",
        "create",
        "--db-connection",
        "x",
        "--tables",
        "a",
        "--business-context",
        "c",
        "-f",
    )
    assert result.code == 1
    events = [json.loads(line) for line in result.out.splitlines()]
    assert events[-1] == {"type": "result", "task_id": events[0]["task"]["task_id"], "status": "failed",
                          "error": "validation below threshold"}  # fmt: skip
    assert {"type": "step_failed"}.items() <= next(e for e in events if e["type"] == "step_failed").items()


async def test_db_tables(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    result = await dpctl(url, "db", "tables", "--db-connection", "shop", "--schema", "public", "--names-only")
    assert result.code == 0
    assert result.out.split() == ["public.orders", "public.users"]
    assert fake.requests[-1][2] == {"db_connection": "shop", "schema": "public"}
    table = await dpctl(url, "db", "tables", "--db-connection", "shop")
    assert "ROW_COUNT" in table.out and "public.orders" in table.out


def test_terminal_view_redraws_the_step_bars_in_place() -> None:
    from services.dpctl.follow import Follower

    out = io.StringIO()
    follower = Follower(client=None, out=out, tty=True)  # type: ignore[arg-type]
    follower.view.apply("step_progress", {"step": "ddl_generation", "percent": 40.0})
    follower._step_changed()
    follower._log({"level": "INFO", "message": "hello", "timestamp": "2025-01-01T00:00:00+00:00"})
    text = out.getvalue()
    assert "\x1b[4F\x1b[J" in text  # the four bars are erased before the log line, then drawn again
    assert text.count("ddl_generation  [##########") == 2
    assert "hello" in text


def test_sse_parser_handles_comments_ids_and_multiline_data() -> None:
    frames = list(
        parse_sse(
            [b": hi\n", b"event: x\n", b"id: 7\n", b'data: {"a":\n', b"data: 1}\n", b"\n", b"data: tail\n"]
        )
    )
    assert [(f.event, f.data, f.id) for f in frames] == [("x", {"a": 1}, "7"), ("message", "tail", None)]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.dpctl.main import build_parser
    from services.dpctl.settings import DpctlSettings

    monkeypatch.setenv("DP_GATEWAY_URL", "http://gw:1")
    monkeypatch.setenv("DP_API_TOKEN", "tok")
    args = build_parser(DpctlSettings()).parse_args(["task", "list"])
    assert (args.url, args.token) == ("http://gw:1", "tok")
    args = build_parser(DpctlSettings()).parse_args(["task", "list", "--url", "http://other:2", "--json"])
    assert (args.url, args.json) == ("http://other:2", True)
