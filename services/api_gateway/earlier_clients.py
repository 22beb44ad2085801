"""What the earlier implementation's clients send, beside this product's contract (issue #14; the
rules are in docs/api_gateway.md, "Earlier clients"):

- a create without `parameters` (the flat create) makes a task that waits for POST /execute, in file
  upload mode when it has no table list yet; a create with `parameters` is the seed's and starts now;
- execute's `force_execution` and `clean_existing_files`, and the training-store options;
- `GET /tasks/{id}/table-list-info`;
- the batch delete's `delete_database_records: false` (files go, records stay) and its answer's
  `deleted_tasks`, `failed_tasks`, `summary`.

The routes that serve the seed's shapes dispatch here with one call each.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.task_files import (
    DEFAULT_TABLE_LIST_FILE,
    LOG_FILE,
    resolve_task_file,
    table_list_target,
    task_dir,
)
from services.api_gateway.auth import usable_connections
from services.api_gateway.connections import check_hosts, masked_url, resolve_connection
from services.api_gateway.envelope import ok
from services.api_gateway.errors import ApiError, MissingParams
from services.api_gateway.keys import POOL, SECRET_BOX, SETTINGS
from services.api_gateway.routes.tasks import accept_and_wait
from services.api_gateway.schemas.earlier_create import (
    EarlierTaskCreated,
    FlatCreateTaskRequest,
    TableListInfo,
)
from services.api_gateway.schemas.responses import (
    DeletedTask,
    DeleteResult,
    DeleteSummary,
    FailedTask,
    TasksDeleted,
)
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.table_list_intake import (
    TableListFile,
    from_lists_dir,
    remove_task_dir,
    write_into_task,
)
from services.api_gateway.validation import parse_model, require_task_id, task_not_found
from shared.commands import CreateTask
from shared.ids import new_task_id
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName

UPLOAD_NEXT_STEP = DATA_PIPELINE + "/tasks/{task_id}/upload-table-list"


# ---- create ---------------------------------------------------------------------------------------


def is_flat_create(body: Mapping[str, Any]) -> bool:
    """The rule: a body with `parameters` (or the seed's `task_type`) is the seed's create, scheduled now;
    any other is the flat create, which waits for execute."""
    return "parameters" not in body and "task_type" not in body


def waits_for_execute(row: Mapping[str, Any]) -> bool:
    """A task of the flat create that no execute has started yet."""
    parameters = row["parameters"] if isinstance(row["parameters"], Mapping) else {}
    return row["status"] == "pending" and parameters.get("wait_for_execute") is True


async def _provisioned_list(
    request: web.Request, name: str | None
) -> tuple[TableListFile | None, str | None]:
    """The table list `name` names under DP_TABLE_LISTS_DIR, or (None, why not): upload mode."""
    if not name:
        return None, None
    settings = request.app[SETTINGS]
    try:
        found = await asyncio.to_thread(
            from_lists_dir, settings.table_lists_dir, name, settings.max_upload_bytes
        )
    except ApiError as exc:
        return None, exc.response
    return found, None


async def create_waiting_task(request: web.Request, body: dict[str, Any]) -> web.Response:
    """The flat create: a task that waits for POST /execute (201, or 202 as the seed's create)."""
    settings = request.app[SETTINGS]
    req = parse_model(FlatCreateTaskRequest, body)
    named = (req.db_connection or "").strip() or settings.default_connection
    if not named:
        raise MissingParams(
            "missing required parameters: db_connection (this server has no DP_DEFAULT_CONNECTION)",
            missing=["db_connection"],
        )
    connection = resolve_connection(named, usable_connections(request, named), settings=settings)
    table_list, unresolved = await _provisioned_list(request, req.table_list_file)
    parameters = TaskParameters(
        db_connection=masked_url(connection.url),
        db_connection_secret=None if connection.name else request.app[SECRET_BOX].encrypt(connection.url),
        db_connection_name=connection.name,
        # Upload mode: the upload routes write the default file, which step 1 then reads.
        table_list_file=table_list.file_name if table_list else DEFAULT_TABLE_LIST_FILE,
        table_list_source=table_list.source if table_list else "upload",
        business_context=(req.business_context or "").strip(),
        task_name=req.task_name,
        db_name=req.db_name or connection.database,
        enable_sql_validation=req.enable_sql_validation,
        enable_llm_repair=req.enable_llm_repair,
        modify_original_file=req.modify_original_file,
        enable_training_data_load=req.enable_training_data_load,
        wait_for_execute=True,
        backup_vector_tables=req.backup_vector_tables,
        truncate_vector_tables=req.truncate_vector_tables,
    )
    await check_hosts(parameters.db_connection, settings)
    task_id = new_task_id(datetime.now(UTC))
    if table_list is not None:
        await asyncio.to_thread(write_into_task, settings.data_root, task_id, table_list)
    row, accepted_at = await _publish(request, task_id, CreateTask(parameters=parameters, created_by="api"))
    upload_mode = table_list is None
    data = EarlierTaskCreated(
        task_id=task_id,
        task_name=req.task_name,
        status=row["status"] if row else "pending",
        created_at=row["created_at"] if row else accepted_at,
        output_directory=str(task_dir(settings.data_root, task_id)),
        file_upload_mode=upload_mode,
        next_step=UPLOAD_NEXT_STEP.format(task_id=task_id) if upload_mode else None,
        waiting_for_execute=True,
    ).model_dump(mode="json", exclude_none=True)
    text = "task created; it waits for POST /tasks/{id}/execute"
    if upload_mode:
        why = f" ({unresolved})" if unresolved else ""
        text = f"task created in file upload mode{why}: upload its table list, then execute it"
    if row is None:
        return ok(text + "; not recorded yet (GET shows it pending)", data, status=202)
    return ok(text, data, status=201)


async def _publish(request: web.Request, task_id: str, command: CreateTask) -> tuple[Any, datetime]:
    """As the seed's create: journal the accepted task, publish (confirmed), wait (bounded) to see it."""
    data_root = request.app[SETTINGS].data_root
    return await accept_and_wait(
        request, task_id, command, lambda: asyncio.to_thread(remove_task_dir, data_root, task_id)
    )


# ---- execute --------------------------------------------------------------------------------------


def run_steps(mode: str, step: StepName | None, steps: tuple[StepName, StepName] | None) -> list[StepName]:
    """The steps an execute covers, as the gateway reads the request (the scheduler's plan agrees)."""
    if mode != "complete":
        return [step or STEP_ORDER[0]]
    if steps is None:
        return list(STEP_ORDER)
    return list(STEP_ORDER[STEP_ORDER.index(steps[0]) : STEP_ORDER.index(steps[1]) + 1])


def _clean(data_root: Path, task_id: str, names: Iterable[str]) -> list[str]:
    removed = []
    for name in names:
        path = resolve_task_file(data_root, task_id, name)
        if path is not None:
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


async def clean_step_outputs(request: web.Request, task_id: str, steps: list[StepName]) -> list[str]:
    """`clean_existing_files`: remove the outputs the steps of this run registered before (never the
    task's table list nor its log), so what the run leaves is only its own. Returns the names removed."""
    pool = request.app[POOL]
    row = await read_models.get_task(pool, task_id)
    parameters = row["parameters"] if row is not None and isinstance(row["parameters"], Mapping) else {}
    keep = {table_list_target(parameters.get("table_list_file")), LOG_FILE}
    wanted = {s.value for s in steps}
    names = {
        r["file_name"]
        for r in await read_models.outputs(pool, task_id)
        if r["step_name"] in wanted and r["file_name"] not in keep
    }
    return await asyncio.to_thread(_clean, request.app[SETTINGS].data_root, task_id, sorted(names))


# ---- table-list-info ------------------------------------------------------------------------------


def _size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _read_list(path: Path) -> tuple[list[str], int, datetime]:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    stat = path.stat()
    return [n for n in dict.fromkeys(names) if n], stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)


async def table_list_info(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    row = await read_models.get_task(request.app[POOL], task_id)
    if row is None:
        raise task_not_found(task_id)
    parameters = row["parameters"] if isinstance(row["parameters"], Mapping) else {}
    name = table_list_target(parameters.get("table_list_file"))
    path = resolve_task_file(request.app[SETTINGS].data_root, task_id, name)
    if path is not None:
        tables, size, written = await asyncio.to_thread(_read_list, path)
        data = TableListInfo(
            task_id=task_id,
            has_file=True,
            file_name=name,
            file_size=size,
            file_size_formatted=_size_text(size),
            uploaded_at=written,
            table_count=len(tables),
            tables=tables,
            source="file",
        )
    else:
        given = [t for t in parameters.get("table_list") or [] if isinstance(t, str)]
        data = TableListInfo(
            task_id=task_id,
            has_file=bool(given),
            file_name=None,
            file_size=None,
            file_size_formatted=None,
            uploaded_at=None,
            table_count=len(given),
            tables=given,
            source="parameters" if given else "none",
        )
    text = f"table list: {data.table_count} tables" if data.has_file else "the task has no table list yet"
    return ok(text, data.model_dump(mode="json"))


# ---- batch delete ---------------------------------------------------------------------------------


def _remove_directory(directory: Path) -> tuple[int, int] | None:
    """(files, bytes) removed with the directory, or None when there was none."""
    if not directory.is_dir():
        return None
    files = [p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    shutil.rmtree(directory)
    return len(files), size


async def delete_files_only(
    request: web.Request, task_ids: list[str], continue_on_error: bool
) -> web.Response:
    """`delete_database_records: false`: remove each task's directory and keep its records (the task
    then shows `directory_exists: false`). A running task is not touched (failed: cancel it first)."""
    pool = request.app[POOL]
    data_root = request.app[SETTINGS].data_root
    now = datetime.now(UTC)
    results: list[DeleteResult] = []
    deleted: list[DeletedTask] = []
    failed: list[FailedTask] = []
    for task_id in task_ids:
        if failed and not continue_on_error:
            failed.append(
                FailedTask(task_id=task_id, error="not attempted: an earlier id failed", error_code="SKIPPED")
            )
            results.append(DeleteResult(task_id=task_id, status="skipped"))
            continue
        row = await read_models.get_task(pool, task_id)
        if row is None:
            failed.append(FailedTask(task_id=task_id, error="task not found", error_code="NOT_FOUND"))
            results.append(DeleteResult(task_id=task_id, status="not_found"))
            continue
        if row["status"] == "in_progress" or (row["status"] == "pending" and not waits_for_execute(row)):
            failed.append(
                FailedTask(
                    task_id=task_id,
                    error=f"task is {row['status']}: cancel it first",
                    error_code="TASK_RUNNING",
                )
            )
            results.append(DeleteResult(task_id=task_id, status="failed"))
            continue
        removed = await asyncio.to_thread(_remove_directory, task_dir(data_root, task_id))
        if removed is None:
            failed.append(
                FailedTask(task_id=task_id, error="the task has no directory", error_code="DELETE_FAILED")
            )
            results.append(DeleteResult(task_id=task_id, status="failed"))
            continue
        count, size = removed
        deleted.append(
            DeletedTask(
                success=True,
                task_id=task_id,
                directory_deleted=True,
                database_records_deleted=False,
                deleted_files_count=count,
                deleted_size=_size_text(size),
                deleted_at=now,
            )
        )
        results.append(DeleteResult(task_id=task_id, status="files_deleted"))
    data = TasksDeleted(
        results=results,
        deleted_count=len(deleted),
        pending_count=0,
        not_found_count=sum(1 for r in results if r.status == "not_found"),
        deleted_at=now,
        deleted_tasks=deleted,
        failed_tasks=failed,
        summary=DeleteSummary(
            total_requested=len(task_ids), successfully_deleted=len(deleted), failed=len(failed)
        ),
    )
    text = f"{len(deleted)} task directories deleted (records kept), {len(failed)} failed"
    return ok(text, data.model_dump(mode="json"))


def earlier_delete_fields(outcomes: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The earlier answer's keys for a batch delete of records and files (the seed's DELETE /tasks)."""
    deleted = [
        DeletedTask(
            success=True,
            task_id=t,
            directory_deleted=True,
            database_records_deleted=outcome == "deleted",
            deleted_at=now,
        )
        for t, outcome in outcomes.items()
        if outcome in ("deleted", "deleting")
    ]
    failed = [
        FailedTask(task_id=t, error="task not found", error_code="NOT_FOUND")
        for t, outcome in outcomes.items()
        if outcome == "not_found"
    ]
    return {
        "deleted_at": now,
        "deleted_tasks": deleted,
        "failed_tasks": failed,
        "summary": DeleteSummary(
            total_requested=len(outcomes), successfully_deleted=len(deleted), failed=len(failed)
        ),
    }


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/table-list-info",
        table_list_info,
        "Whether the task has a table list, its name, size and tables (ext)",
        "files",
        response=TableListInfo,
        role="viewer",
    ),
]
