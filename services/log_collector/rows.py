"""The collector's row changes below the task record: executions, log lines, outputs, made on the batch's
rows in memory (services/log_collector/unit_of_work.py). Each is keyed so that a rebuild writes the same
row again (row id = the creating event's seq), and a finished execution row never moves back
(shared.lifecycle)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from services.log_collector.unit_of_work import UnitOfWork, utc
from shared.events import OutputRegistered
from shared.lifecycle import execution_finished
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets
from shared.steps import STEP_ORDER
from shared.vocabulary import LEVEL_NUMBERS


async def update_execution(uow: UnitOfWork, execution_id: str | None, **fields: Any) -> bool:
    """Change an unfinished execution; False when there is none to change."""
    row = await uow.execution(execution_id)
    if row is None or execution_finished(row["status"]):
        return False
    uow.update_execution(
        row["execution_id"], {k: utc(v) if isinstance(v, datetime) else v for k, v in fields.items()}
    )
    return True


async def finish_execution(
    uow: UnitOfWork,
    env: EventEnvelope,
    execution_id: str | None,
    status: str,
    error: str | None,
    result: Any,
) -> bool:
    """An execution's outcome (error text masked), unless it had one already."""
    return await update_execution(
        uow,
        execution_id,
        status=status,
        completed_at=env.occurred_at,
        error_message=mask_secrets(error) if error else None,
        execution_result=result,
    )


async def insert_log(
    uow: UnitOfWork,
    env: EventEnvelope,
    seq: int,
    *,
    execution_id: str | None,
    level: str,
    message: str,
    step_name: str | None,
    module: str | None,
    function: str | None,
    extra: dict[str, Any],
) -> bool:
    """Store one log line (secrets masked) with the event's id and its seq as the row id, unless the task
    has no record (deleted); True when a row was added. The event is new (the store admitted it), so the
    line is too."""
    if await uow.task(env.task_id) is None:
        return False
    execution = await uow.execution(execution_id)
    uow.add_log(
        {
            "id": seq,
            "task_id": env.task_id,
            "execution_id": execution["execution_id"] if execution else None,
            "log_level": level,
            "message": mask_secrets(message),
            "step_name": step_name,
            "module_name": module,
            "function_name": function,
            "timestamp": utc(env.occurred_at),
            "extra_data": mask_secrets(json.dumps(extra, default=str)),
            "event_id": env.event_id,
            "level_no": LEVEL_NUMBERS[level],
        }
    )
    return True


async def upsert_output(uow: UnitOfWork, env: EventEnvelope, e: OutputRegistered, seq: int) -> None:
    """Record an output file (a re-registration of the same path updates the row)."""
    if await uow.task(env.task_id) is None:
        return
    execution = await uow.execution(e.execution_id)
    uow.add_output(
        (
            env.task_id,
            execution["execution_id"] if execution else None,
            e.file_type,
            e.file_name,
            e.relative_path,
            e.size,
            e.sha256,
            e.description,
            env.occurred_at,
            e.is_primary,
            e.step.value if e.step else None,
            seq,
        )
    )


def progress_of(stats: dict[str, Any], step_status: dict[str, str]) -> int:
    plan = stats.get("plan") or [s.value for s in STEP_ORDER]
    per_step = stats.get("progress", {})
    total = 0.0
    for step in plan:
        status = step_status.get(step)
        total += 100.0 if status in ("completed", "skipped") else float(per_step.get(step, 0))
    return min(int(total / max(len(plan), 1)), 100)


def waits_for_execute(parameters: object) -> bool:
    """A task of the earlier implementation's create, not released by an execute yet."""
    return isinstance(parameters, dict) and parameters.get("wait_for_execute") is True
