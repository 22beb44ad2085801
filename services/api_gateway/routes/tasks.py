"""Creating tasks and reading them: POST /tasks, GET /tasks, GET /tasks/active, GET /tasks/{task_id}."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import SecretStr

from services.api_gateway.adapters import accepted, read_models
from services.api_gateway.adapters.recorded import LISTENER, Waiter
from services.api_gateway.adapters.task_files import task_dir
from services.api_gateway.auth import usable_connections, waiting_slot
from services.api_gateway.connections import check_hosts, masked_url, resolve_connection
from services.api_gateway.cursors import decode_task_cursor, task_cursor
from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams, MissingParams
from services.api_gateway.incremental import resolve_base
from services.api_gateway.keys import BROKER, METRICS, POOL, SECRET_BOX, SETTINGS
from services.api_gateway.schemas.earlier_create import CreateTaskBody, TaskCreatedAny
from services.api_gateway.schemas.query_strings import TaskCreateQuery, TaskDetailQuery, TaskListQuery
from services.api_gateway.schemas.requests import CreateTaskForm, CreateTaskRequest
from services.api_gateway.schemas.responses import ActiveTasks, TaskCreated, TaskDetail, TaskList
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.step_plans import first_step, require_inputs, step_range
from services.api_gateway.table_list_intake import (
    TableListFile,
    from_lists_dir,
    is_multipart,
    read_create_form,
    remove_task_dir,
    require_form_data,
    write_into_task,
)
from services.api_gateway.task_views import task_detail, task_summary
from services.api_gateway.validation import (
    missing_fields,
    parse_model,
    parse_query,
    read_json_object,
    require_task_id,
    task_not_found,
)
from services.api_gateway.waiting import wait_settled, wait_until
from shared.commands import CreateTask
from shared.ids import new_task_id
from shared.parameters import TaskParameters
from shared.secrets import SecretBox
from shared.settings import GatewaySettings
from shared.steps import STEP_ORDER, step_number
from shared.vocabulary import TASK_MOVING


def _check_required(body: dict[str, Any]) -> dict[str, Any]:
    """Missing required fields, reported all at once before type validation (seed semantics: empty = missing)."""
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidParams("parameters must be a JSON object", invalid=["parameters"])
    missing = missing_fields(parameters, ["db_connection", "business_context"])
    if missing_fields(parameters, ["table_list_file"]) and missing_fields(parameters, ["table_list"]):
        missing.insert(1, "table_list_file")
    if parameters.get("execution_mode") == "single" and parameters.get("single_step") is None:
        missing.append("single_step")
    if missing:
        hint = " (or table_list)" if "table_list_file" in missing else ""
        raise MissingParams(f"missing required parameters: {', '.join(missing)}{hint}", missing=missing)
    return parameters


def build_parameters(
    request: CreateTaskRequest,
    settings: GatewaySettings,
    box: SecretBox,
    connections: Mapping[str, SecretStr] | None = None,
    table_list: TableListFile | None = None,
) -> TaskParameters:
    """`connections`: the named connections the caller may use (default: every configured one);
    `table_list`: the checked table-list file the task is created with (its name in the task directory)."""
    p = request.parameters
    if p.execution_mode == "complete" and p.single_step is not None:
        raise InvalidParams("single_step is only allowed with execution_mode single", invalid=["single_step"])
    if p.table_list_file and p.table_list:
        raise InvalidParams(
            "give table_list_file or table_list, not both", invalid=["table_list", "table_list_file"]
        )
    execution_mode, single_step = p.execution_mode, p.single_step
    steps = step_range(p.from_step, p.to_step)
    if steps is not None and execution_mode == "single":
        raise InvalidParams(
            "single mode runs single_step; a range (from_step, to_step) is complete mode's",
            invalid=["from_step", "to_step"],
        )
    if steps is not None and steps[0] is steps[1]:
        # Single mode is the range from = to; it is stored and shown as single mode.
        execution_mode, single_step, steps = "single", step_number(steps[0]), None
    connection = resolve_connection(
        p.db_connection, settings.connections if connections is None else connections, settings=settings
    )
    return TaskParameters(
        db_connection=masked_url(connection.url),
        db_connection_secret=None if connection.name else box.encrypt(connection.url),
        db_connection_name=connection.name,
        table_list=list(dict.fromkeys(p.table_list)) if p.table_list else None,
        table_list_file=table_list.file_name if table_list else None,
        table_list_source=table_list.source if table_list else None,
        business_context=p.business_context.strip(),
        task_name=p.task_name,
        db_name=p.db_name or connection.database,
        execution_mode=execution_mode,
        single_step=single_step,
        from_step=step_number(steps[0]) if steps and steps[0] is not STEP_ORDER[0] else None,
        to_step=step_number(steps[1]) if steps and steps[1] is not STEP_ORDER[-1] else None,
        enable_sql_validation=p.enable_sql_validation,
        enable_llm_repair=p.enable_llm_repair,
        modify_original_file=p.modify_original_file,
        enable_training_data_load=p.enable_training_data_load,
        review_before_load=p.review_before_load,
        theme_count=p.theme_count,
        questions_per_theme=p.questions_per_theme,
        llm_repair_rounds=p.llm_repair_rounds,
        max_llm_tokens=p.max_llm_tokens,
    )


async def recorded_row(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record | None:
    """The read model's row of a new task (None until the collector has recorded it; then its journal row
    is gone)."""
    return await accepted.recorded(pool, task_id)


async def wait_recorded(
    app: web.Application, task_id: str, woken: Waiter, seconds: float
) -> asyncpg.Record | None:
    """Wait up to `seconds` until the task shows in the read model; its journal row goes with the read
    that finds it. 0 reads nothing: the task is answered 202 (the journal's prune drops its row later)."""
    settings, pool = app[SETTINGS], app[POOL]
    row = await wait_until(lambda: recorded_row(pool, task_id), seconds, woken) if seconds > 0 else None
    await app[accepted.PRUNER].maybe(pool, settings.accepted_task_ttl_seconds)
    return row


async def accept_and_wait(
    request: web.Request,
    task_id: str,
    command: CreateTask,
    cleanup: Callable[[], Awaitable[Any]] | None = None,
    wait: float | None = None,
) -> tuple[asyncpg.Record | None, datetime]:
    """Journal the accepted task, publish CreateTask (confirmed), then wait (up to `wait` seconds, else the
    server's create_visibility_timeout_seconds) until the collector has recorded it: the read model's row
    (None past the wait) and the acceptance time. If the command cannot be sent, the journal row goes and
    `cleanup` runs before the error is raised."""
    pool: asyncpg.Pool = request.app[POOL]
    params = command.parameters
    # Waiting for the collector's notification starts before the command can reach it.
    with request.app[LISTENER].expect(task_id) as woken:
        try:
            accepted_at = await accepted.record(
                pool, task_id, command.task_type, params.execution_mode, params.single_step
            )
            try:
                await request.app[BROKER].send_to_scheduler(command, task_id)
            except BaseException:
                with contextlib.suppress(Exception):
                    await accepted.forget(pool, task_id)
                raise
        except BaseException:
            if cleanup is not None:
                with contextlib.suppress(Exception):
                    await cleanup()
            raise
        request.app[METRICS].commands.labels(command.type).inc()
        seconds = request.app[SETTINGS].create_visibility_timeout_seconds if wait is None else wait
        row = await wait_recorded(request.app, task_id, woken, seconds)
    return row, accepted_at


async def create_task(request: web.Request) -> web.Response:
    """Validate, note the task as accepted, publish CreateTask (confirmed), and wait (bounded) until the
    task shows in the read model: 201. Past the wait: 202, and the task is addressable all the same
    (GET shows it `pending`, cancel and delete act on it) through the gateway's intake journal."""
    settings = request.app[SETTINGS]
    query = parse_query(TaskCreateQuery, request)
    # The table list comes with the create (a file part, or a file under DP_TABLE_LISTS_DIR) and is
    # written into the task directory before the command is published: step 1 always finds it.
    table_list: TableListFile | None = None
    if is_multipart(request):
        require_form_data(request)
        body, table_list = await read_create_form(request, settings.max_upload_bytes)
    else:
        body = await read_json_object(request)
        from services.api_gateway import earlier_clients  # it builds on this module's helpers

        if earlier_clients.is_flat_create(body):
            return await earlier_clients.create_waiting_task(request, body)
    _check_required(body)
    parsed = parse_model(CreateTaskRequest, body)
    if table_list is None and parsed.parameters.table_list_file and not parsed.parameters.table_list:
        table_list = await asyncio.to_thread(
            from_lists_dir,
            settings.table_lists_dir,
            parsed.parameters.table_list_file,
            settings.max_upload_bytes,
        )
    usable = usable_connections(request, parsed.parameters.db_connection.strip())
    parameters = build_parameters(parsed, settings, request.app[SECRET_BOX], usable, table_list)
    await check_hosts(parameters.db_connection, settings)
    if parsed.parameters.incremental_from:
        base = await resolve_base(
            request.app[POOL],
            settings.data_root,
            parsed.parameters.incremental_from,
            parameters.db_connection,
            field="incremental_from",
        )
        parameters = parameters.model_copy(update={"incremental_from": base.task_id})
    task_id = new_task_id(datetime.now(UTC))
    # A new task directory holds nothing but the table list: a run that starts past step 1 cannot run.
    require_inputs(first_step(parameters), settings.data_root / task_id)
    command = CreateTask(task_type=parsed.task_type, parameters=parameters, created_by="api")
    cleanup = None
    if table_list is not None:
        await asyncio.to_thread(write_into_task, settings.data_root, task_id, table_list)

        def cleanup() -> Awaitable[None]:
            return asyncio.to_thread(remove_task_dir, settings.data_root, task_id)

    row, accepted_at = await accept_and_wait(request, task_id, command, cleanup, query.wait)
    output_directory = str((settings.data_root / task_id).resolve())
    if row is None:
        # Accepted by the broker, but the read model has not caught up yet: the task will appear.
        data = TaskCreated(
            task_id=task_id, status="pending", created_at=accepted_at, output_directory=output_directory
        )
        return ok(
            "task accepted; not recorded yet: GET /tasks/{id} shows it pending, cancel and delete work",
            data.model_dump(mode="json"),
            status=202,
        )
    data = TaskCreated(
        task_id=task_id, status=row["status"], created_at=row["created_at"], output_directory=output_directory
    )
    return ok("task created", data.model_dump(mode="json"), status=201)


async def list_tasks(request: web.Request) -> web.Response:
    query = parse_query(TaskListQuery, request)
    if query.cursor and query.offset:
        raise InvalidParams("page by cursor or by offset, not both", invalid=["cursor", "offset"])
    before = decode_task_cursor(query.cursor) if query.cursor else None
    filters = read_models.TaskFilters(
        status=query.status, created_by=query.created_by, db_name=query.db_name, search=query.search_texts
    )
    offset = None if query.cursor else (query.offset or 0)
    rows, total, exact = await read_models.list_tasks(
        request.app[POOL],
        filters,
        before=before,
        limit=query.limit,
        offset=offset or 0,
        count_cap=request.app[SETTINGS].task_count_limit,
    )
    now = datetime.now(UTC)
    page = rows[: query.limit]
    next_cursor = task_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > query.limit else None
    data = TaskList(
        tasks=[task_summary(r, now) for r in page],
        next_cursor=next_cursor,
        total=total,
        total_exact=exact,
        limit=query.limit,
        offset=offset,
    )
    return ok(f"{len(page)} of {total}{'' if exact else '+'} tasks", data.model_dump(mode="json"))


async def active_tasks(request: web.Request) -> web.Response:
    rows, active = await read_models.active_tasks(request.app[POOL])
    now = datetime.now(UTC)
    tasks = [task_summary(r, now) for r in rows]
    data = ActiveTasks(active=active, task=tasks[0] if tasks else None, tasks=tasks)
    text = (
        f"{len(tasks)} running task(s)"
        if active
        else ("no running task" if not tasks else "no running task; the most recent one")
    )
    return ok(text, data.model_dump(mode="json"))


async def get_task(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    query = parse_query(TaskDetailQuery, request)
    pool = request.app[POOL]
    row = await read_models.get_task(pool, task_id)
    if row is not None and query.wait and row["status"] in TASK_MOVING:
        with waiting_slot(request):
            row = await wait_settled(request.app, task_id, query.wait)
    if row is None:
        raise task_not_found(task_id)
    directory = task_dir(request.app[SETTINGS].data_root, task_id)
    executions, exists = await asyncio.gather(
        read_models.executions(pool, task_id), asyncio.to_thread(directory.is_dir)
    )
    detail = task_detail(row, executions, datetime.now(UTC))
    detail.directory_exists = exists
    if not detail.recorded:
        return ok("task accepted, not recorded yet (pending)", detail.model_dump(mode="json"))
    return ok("task detail", detail.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks",
        create_task,
        "Create and schedule a task (with `parameters`), or create one that waits for execute (flat body)",
        "tasks",
        query=TaskCreateQuery,
        body=CreateTaskBody,
        form=CreateTaskForm,
        response=TaskCreatedAny,
        statuses=(201, 202),
        # 409: a new task cannot start past step 1, nor a range whose first step lacks its inputs.
        errors=(400, 401, 409, 413, 415, 503),
        role="operator",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks",
        list_tasks,
        "List tasks, newest first; `search` finds a fragment of the id, name, database or context",
        "tasks",
        query=TaskListQuery,
        response=TaskList,
        errors=(400, 401),
        role="viewer",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/active",
        active_tasks,
        "The running task(s), else the most recent",
        "tasks",
        response=ActiveTasks,
        errors=(401,),
        role="viewer",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}",
        get_task,
        "Task detail with steps and execution history; `wait` answers once the task settles",
        "tasks",
        query=TaskDetailQuery,
        response=TaskDetail,
        errors=(400, 401, 404, 503),
        role="viewer",
    ),
]
