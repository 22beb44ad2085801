"""The collector's row writes below the task record: executions, log lines, outputs. Each is keyed so that
a redelivered event or a rebuild writes the same row again (row id = the creating event's seq), and a
finished execution row never moves back (shared.lifecycle)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.events import OutputRegistered
from shared.lifecycle import EXECUTION_FINISHED
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets
from shared.vocabulary import LEVEL_NUMBERS


async def update_execution(conn: asyncpg.Connection, execution_id: str | None, sets: str, *args: Any) -> bool:
    """Apply `sets` ($3... are `args`) to an unfinished execution; False when there is none to change."""
    if not execution_id:
        return False
    result = await conn.execute(
        f"UPDATE data_pipeline_task_executions SET {sets} WHERE execution_id = $1 AND status <> ALL($2::text[])",
        execution_id,
        list(EXECUTION_FINISHED),
        *args,
    )
    return bool(result != "UPDATE 0")


async def finish_execution(
    conn: asyncpg.Connection,
    env: EventEnvelope,
    execution_id: str | None,
    status: str,
    error: str | None,
    result: Any,
) -> bool:
    """An execution's outcome (error text masked), unless it had one already."""
    return await update_execution(
        conn,
        execution_id,
        "status = $3, completed_at = $4, error_message = $5, execution_result = $6,"
        " duration_seconds = CASE WHEN started_at IS NULL THEN NULL"
        " ELSE GREATEST(0, EXTRACT(EPOCH FROM ($4 - started_at)))::int END",
        status,
        env.occurred_at,
        mask_secrets(error) if error else None,
        result,
    )


async def insert_log(
    conn: asyncpg.Connection,
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
    has no record (deleted) or the line was stored before (a redelivery); True when a row was added."""
    status = await conn.execute(
        """
        INSERT INTO data_pipeline_task_logs (task_id, execution_id, log_level, message, step_name,
            module_name, function_name, timestamp, extra_data, event_id, level_no, id)
        SELECT $1::varchar,
               (SELECT execution_id FROM data_pipeline_task_executions WHERE execution_id = $2::varchar),
               $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
        WHERE EXISTS (SELECT 1 FROM data_pipeline_tasks WHERE id = $1::varchar)
        ON CONFLICT (event_id) DO NOTHING
        """,
        env.task_id,
        execution_id,
        level,
        mask_secrets(message),
        step_name,
        module,
        function,
        env.occurred_at,
        json.loads(mask_secrets(json.dumps(extra, default=str))),
        env.event_id,
        LEVEL_NUMBERS[level],
        seq,
    )
    return bool(status != "INSERT 0 0")


async def upsert_output(conn: asyncpg.Connection, env: EventEnvelope, e: OutputRegistered, seq: int) -> None:
    """Record an output file (a re-registration of the same path updates the row)."""
    await conn.execute(
        """
        INSERT INTO data_pipeline_task_outputs (task_id, execution_id, file_type, file_name, file_path,
            file_size, content_hash, description, created_at, modified_at, is_primary, step_name, id)
        SELECT $1::varchar,
               (SELECT execution_id FROM data_pipeline_task_executions WHERE execution_id = $2::varchar),
               $3, $4, $5, $6, $7, $8, $9::timestamptz, $9::timestamptz, $10, $11, $12
        WHERE EXISTS (SELECT 1 FROM data_pipeline_tasks WHERE id = $1::varchar)
        ON CONFLICT (task_id, file_path) DO UPDATE SET
            execution_id = EXCLUDED.execution_id, file_type = EXCLUDED.file_type,
            file_name = EXCLUDED.file_name, file_size = EXCLUDED.file_size,
            content_hash = EXCLUDED.content_hash, description = EXCLUDED.description,
            modified_at = EXCLUDED.modified_at, is_primary = EXCLUDED.is_primary,
            step_name = EXCLUDED.step_name
        """,
        env.task_id,
        e.execution_id,
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
