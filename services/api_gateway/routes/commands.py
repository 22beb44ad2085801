"""Asking the scheduler to act on an existing task: execute again, cancel, delete (one or several).

The gateway checks what it can see in the read model (existence, running state, step inputs) and
publishes a confirmed command; the scheduler decides, and the collector updates the read model.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.api_gateway import earlier_clients
from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.task_files import task_dir
from services.api_gateway.envelope import ok
from services.api_gateway.errors import Conflict, InvalidParams, MissingParams
from services.api_gateway.keys import BROKER, METRICS, POOL, SETTINGS
from services.api_gateway.schemas.requests import CancelTaskRequest, DeleteTasksRequest, ExecuteTaskRequest
from services.api_gateway.schemas.responses import CommandAccepted, DeleteResult, TaskDeleted, TasksDeleted
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.step_plans import require_inputs, step_range
from services.api_gateway.validation import parse_model, read_json_object, require_task_id, task_not_found
from services.api_gateway.waiting import wait_until
from shared.commands import CancelTask, DeleteTask, ExecuteTask
from shared.ids import is_valid_task_id
from shared.steps import StepName, parse_step, step_by_number


def resolve_execution(req: ExecuteTaskRequest) -> tuple[str, StepName | None]:
    """(`complete` | `single`, step): `step` is a synonym of `single`; naming a step implies single mode."""
    step: StepName | None = None
    if req.step_name is not None:
        try:
            step = parse_step(req.step_name)
        except ValueError:
            raise InvalidParams(f"unknown step_name {req.step_name!r}", invalid=["step_name"]) from None
    if req.single_step is not None:
        by_number = step_by_number(req.single_step)
        if step is not None and step is not by_number:
            raise InvalidParams(
                "single_step and step_name name different steps", invalid=["single_step", "step_name"]
            )
        step = by_number
    mode = {"step": "single", None: "single" if step else "complete"}.get(
        req.execution_mode, req.execution_mode
    )
    assert mode is not None
    if mode == "single" and step is None:
        raise MissingParams("single mode needs single_step (1-4) or step_name", missing=["single_step"])
    if mode == "complete" and step is not None:
        raise InvalidParams("complete mode runs every step; do not name one", invalid=["single_step"])
    return mode, step


async def execute_task(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    req = parse_model(ExecuteTaskRequest, await read_json_object(request, optional=True))
    steps = step_range(req.from_step, req.to_step)
    if steps is not None and (
        req.single_step is not None or req.step_name is not None or req.execution_mode in ("single", "step")
    ):
        raise InvalidParams(
            "give one step (single_step, step_name) or a range (from_step, to_step), not both",
            invalid=["from_step", "to_step"],
        )
    mode, step = resolve_execution(req)
    if steps is not None and steps[0] is steps[1]:
        mode, step, steps = "single", steps[0], None  # single mode is the range from = to
    row = await read_models.get_task(request.app[POOL], task_id)
    if row is None:
        raise task_not_found(task_id)
    # Running the task again connects to its database: the auth middleware has checked that the caller
    # may use the task's connection (auth.check_task_scope).
    status = row["status"]
    if status == "awaiting_review":
        raise Conflict(
            "the task is awaiting review: complete or abandon the review first (POST "
            "/tasks/{task_id}/review/complete or /review/abandon)",
            extra={"task_status": status},
        )
    if status in read_models.RUNNING_STATUSES and not earlier_clients.waits_for_execute(row):
        raise Conflict(f"task is {status}; wait for it to finish or cancel it", extra={"task_status": status})
    if task_id.startswith("manual_"):
        # The command line that started a manual run drives it; the scheduler does not re-run it.
        raise Conflict(
            "manual runs are re-run with `dpctl workflow run --task-id ...`", extra={"task_status": status}
        )
    first = step or (steps[0] if steps else StepName.DDL_GENERATION)
    parameters = row["parameters"] if isinstance(row["parameters"], dict) else {}
    require_inputs(first, task_dir(request.app[SETTINGS].data_root, task_id), parameters)
    if req.clean_existing_files:
        await earlier_clients.clean_step_outputs(
            request, task_id, earlier_clients.run_steps(mode, step, steps)
        )
    force = req.force or req.force_execution
    command = ExecuteTask(
        execution_mode=mode,  # type: ignore[arg-type]
        step=step,
        from_step=steps[0] if steps else None,
        to_step=steps[1] if steps else None,
        force=force,
        backup_vector_tables=req.backup_vector_tables,
        truncate_vector_tables=req.truncate_vector_tables,
    )
    envelope = await request.app[BROKER].send_to_scheduler(command, task_id)
    request.app[METRICS].commands.labels(command.type).inc()
    data = CommandAccepted(
        task_id=task_id,
        command=command.type,
        command_id=str(envelope.command_id),
        execution_mode=req.execution_mode or mode,
        step=step.value if step else None,
        step_name=req.step_name,
        force=force,
    )
    return ok("execution requested", data.model_dump(mode="json"), status=202)


async def cancel_task(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    req = parse_model(CancelTaskRequest, await read_json_object(request, optional=True))
    status = await read_models.task_status(request.app[POOL], task_id)
    if status is None:
        raise task_not_found(task_id)
    if status in read_models.TERMINAL_STATUSES:
        raise Conflict(f"task already finished ({status}); nothing to cancel", extra={"task_status": status})
    command = CancelTask(reason=req.reason or "cancelled by user")
    envelope = await request.app[BROKER].send_to_scheduler(command, task_id)
    request.app[METRICS].commands.labels(command.type).inc()
    data = CommandAccepted(task_id=task_id, command=command.type, command_id=str(envelope.command_id))
    return ok("cancellation requested", data.model_dump(mode="json"), status=202)


async def _delete(request: web.Request, task_ids: list[str]) -> dict[str, str]:
    """Publish DeleteTask for each id, then wait (bounded) for their rows to go; id -> outcome."""
    pool = request.app[POOL]
    known = await read_models.existing_task_ids(pool, task_ids)
    for task_id in task_ids:
        if task_id in known:
            await request.app[BROKER].send_to_scheduler(DeleteTask(), task_id)
            request.app[METRICS].commands.labels("delete_task").inc()

    async def all_gone() -> bool:
        return not await read_models.existing_task_ids(pool, list(known))

    if known:
        await wait_until(all_gone, request.app[SETTINGS].delete_visibility_timeout_seconds)
    remaining = await read_models.existing_task_ids(pool, list(known)) if known else set()
    return {
        t: ("not_found" if t not in known else "deleting" if t in remaining else "deleted") for t in task_ids
    }


async def delete_task(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    outcome = (await _delete(request, [task_id]))[task_id]
    if outcome == "not_found":
        raise task_not_found(task_id)
    gone = outcome == "deleted"
    data = TaskDeleted(task_id=task_id, deleted=gone).model_dump(mode="json")
    if gone:
        return ok("task deleted", data)
    return ok("deletion accepted; the task's records are still being removed", data, status=202)


async def delete_tasks(request: web.Request) -> web.Response:
    req = parse_model(DeleteTasksRequest, await read_json_object(request))
    if req.confirm is not True:
        raise InvalidParams("set confirm to true to delete tasks", invalid=["confirm"])
    bad = [t for t in req.task_ids if not is_valid_task_id(t)]
    if bad:
        raise InvalidParams(
            f"invalid task ids: {', '.join(bad[:10])}", invalid=["task_ids"], extra={"invalid_task_ids": bad}
        )
    task_ids = list(dict.fromkeys(req.task_ids))
    if req.delete_database_records is False:
        return await earlier_clients.delete_files_only(request, task_ids, req.continue_on_error)
    outcomes = await _delete(request, task_ids)
    counts = {k: sum(1 for v in outcomes.values() if v == k) for k in ("deleted", "deleting", "not_found")}
    # Ids already gone are reported per id (not_found), never a 404 for the whole call.
    data = TasksDeleted(
        results=[DeleteResult(task_id=t, status=s) for t, s in outcomes.items()],
        deleted_count=counts["deleted"],
        pending_count=counts["deleting"],
        not_found_count=counts["not_found"],
        **earlier_clients.earlier_delete_fields(outcomes, datetime.now(UTC)),
    )
    status = 202 if counts["deleting"] else 200
    text = f"{counts['deleted']} deleted, {counts['deleting']} being deleted, {counts['not_found']} not found"
    return ok(text, data.model_dump(mode="json"), status=status)


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/execute",
        execute_task,
        "Run the workflow or one step of an existing task again (ext)",
        "commands",
        body=ExecuteTaskRequest,
        body_required=False,
        response=CommandAccepted,
        statuses=(202,),
        errors=(400, 401, 404, 409, 415, 503),
        role="operator",
    ),
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/cancel",
        cancel_task,
        "Stop a running task",
        "commands",
        body=CancelTaskRequest,
        body_required=False,
        response=CommandAccepted,
        statuses=(202,),
        errors=(400, 401, 404, 409, 503),
        role="operator",
    ),
    RouteSpec(
        "DELETE",
        f"{DATA_PIPELINE}/tasks/{{task_id}}",
        delete_task,
        "Delete a task (cancels it if running, removes its files and records)",
        "commands",
        response=TaskDeleted,
        statuses=(200, 202),
        errors=(400, 401, 404, 503),
        role="admin",
    ),
    RouteSpec(
        "DELETE",
        f"{DATA_PIPELINE}/tasks",
        delete_tasks,
        "Delete several tasks (ext)",
        "commands",
        body=DeleteTasksRequest,
        response=TasksDeleted,
        statuses=(200, 202),
        errors=(400, 401, 404, 415, 503),
        role="admin",
    ),
]
