"""Applies one stored event to the read models (tasks, executions, logs, outputs).

Used by the live consumer and by `rebuild` alike, so replaying the store yields the same rows. Every
timestamp comes from the event, never from the clock, and every row id is the sequence number of the
event that created the row: a rebuild reproduces the ids even though deleted tasks' events are purged
from the store. Terminal states never move back: a late event for a finished execution or task changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.log_collector.review_projection import REVIEW_HANDLERS
from services.log_collector.rows import finish_execution, insert_log, update_execution, upsert_output
from shared import events as ev
from shared.event_store import purge_logs, purge_task, task_events
from shared.events import StepName, check_dispatch_table
from shared.final_report import REPORT_EVENT_TYPES, final_report
from shared.lifecycle import is_old_execution, task_finished
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets
from shared.steps import STEP_ORDER
from shared.task_log import Context, task_log_line


def _progress(stats: dict[str, Any], step_status: dict[str, str]) -> int:
    plan = stats.get("plan") or [s.value for s in STEP_ORDER]
    per_step = stats.get("progress", {})
    total = 0.0
    for step in plan:
        status = step_status.get(step)
        total += 100.0 if status in ("completed", "skipped") else float(per_step.get(step, 0))
    return min(int(total / max(len(plan), 1)), 100)


class Projector:
    """One instance per transaction; `apply` dispatches on the event's class through `HANDLERS`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.deleted_tasks: set[str] = set()
        self.logged_tasks: set[str] = set()
        self.logs_purged_tasks: set[str] = set()  # data_pipeline.log goes (log retention)
        self.files_cleaned_tasks: set[str] = set()  # the task directory goes (file retention)

    async def apply(self, env: EventEnvelope, seq: int) -> None:
        handler = HANDLERS.get(type(env.payload))
        if handler is not None:
            await handler(self, env, env.payload, seq)

    # ---- helpers ---------------------------------------------------------------------------------

    async def _task(self, task_id: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            "SELECT status, step_status, step_stats, parameters FROM data_pipeline_tasks WHERE id = $1 FOR UPDATE",
            task_id,
        )
        return dict(row) if row else None

    async def _save_task(self, task_id: str, seq: int, env: EventEnvelope, **fields: Any) -> None:
        fields["updated_at"] = env.occurred_at
        fields["last_event_seq"] = seq
        cols = list(fields)
        assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
        await self.conn.execute(
            f"UPDATE data_pipeline_tasks SET {assignments} WHERE id = $1", task_id, *[fields[c] for c in cols]
        )

    async def _set_step(
        self,
        env: EventEnvelope,
        seq: int,
        step: StepName,
        status: str,
        *,
        execution_id: str | None,
        **extra: Any,
    ) -> None:
        """Move a step of a running task, unless the event belongs to an execution that is no longer current."""
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        stats = task["step_stats"]
        if is_old_execution(stats.get("executions", {}).get(step.value), execution_id):
            return
        step_status = {**task["step_status"], step.value: status}
        if status == "completed":
            stats = {**stats, "progress": {**stats.get("progress", {}), step.value: 100}}
        await self._save_task(
            env.task_id,
            seq,
            env,
            step_status=step_status,
            step_stats=stats,
            progress=_progress(stats, step_status),
            **extra,
        )

    # ---- task events -----------------------------------------------------------------------------

    async def on_task_created(self, env: EventEnvelope, e: ev.TaskCreated, seq: int) -> None:
        params = e.parameters
        plan = [s.value for s in e.steps]
        # Steps outside the plan (single mode, a range) are skipped; why is in step_stats["skipped"].
        step_status = {s.value: ("pending" if s.value in plan else "skipped") for s in STEP_ORDER}
        skipped = {s.value: reason for s, reason in e.skipped.items()}
        await self.conn.execute(
            """
            INSERT INTO data_pipeline_tasks (id, task_type, task_name, status, parameters, step_status, step_stats,
                execution_mode, single_step, created_at, updated_at, created_by, output_directory, db_name,
                business_context, last_event_seq)
            VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14)
            ON CONFLICT (id) DO NOTHING
            """,
            env.task_id,
            e.task_type,
            params.task_name,
            params.public(),
            step_status,
            {"plan": plan, "skipped": skipped, "progress": {}, "executions": {}},
            params.execution_mode,
            params.single_step,
            env.occurred_at,
            e.created_by,
            e.output_directory,
            params.db_name,
            params.business_context,
            seq,
        )

    async def on_task_started(self, env: EventEnvelope, e: ev.TaskStarted, seq: int) -> None:
        task = await self._task(env.task_id)
        if task and task["status"] == "pending":
            await self._save_task(env.task_id, seq, env, status="in_progress", started_at=env.occurred_at)
            await self._task_line(env, seq)

    async def on_task_rerun_requested(self, env: EventEnvelope, e: ev.TaskRerunRequested, seq: int) -> None:
        task = await self._task(env.task_id)
        waiting = task is not None and task["status"] == "pending" and _waits_for_execute(task["parameters"])
        if task is None or not (task_finished(task["status"]) or waiting):
            return
        plan = [s.value for s in e.steps]
        step_status = {**task["step_status"], **dict.fromkeys(plan, "pending")}
        stats = {
            "plan": plan,
            "skipped": {s.value: reason for s, reason in e.skipped.items()},
            "progress": {},
            "executions": task["step_stats"].get("executions", {}),
        }
        await self._save_task(
            env.task_id,
            seq,
            env,
            status="pending",
            started_at=None,
            completed_at=None,
            error_message=None,
            error_step=None,
            result=None,
            current_step=None,
            execution_mode=e.execution_mode,
            step_status=step_status,
            step_stats=stats,
            progress=_progress(stats, step_status),
            **({"parameters": {**task["parameters"], "wait_for_execute": False}} if waiting else {}),
        )

    async def on_task_finished(self, env: EventEnvelope, e: ev.TaskFinished, seq: int) -> None:
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        fields: dict[str, Any] = {
            "status": e.status,
            "completed_at": env.occurred_at,
            "error_message": mask_secrets(e.error_message) if e.error_message else None,
            "result": await self._final_report(env.task_id, seq),
            "current_step": None,
        }
        if e.status == "completed":
            fields["progress"] = 100
        failed_step = await self.conn.fetchval(
            "SELECT error_step FROM data_pipeline_tasks WHERE id = $1", env.task_id
        )
        await self._save_task(env.task_id, seq, env, **fields)
        await self._task_line(env, seq, Context(failed_step=failed_step))

    async def _final_report(self, task_id: str, seq: int) -> dict[str, Any]:
        """The run's final report (shared.final_report) from the task's events up to this one, secrets
        masked: the same on the live path and in a rebuild."""
        events = await task_events(self.conn, task_id, through_seq=seq, types=REPORT_EVENT_TYPES)
        report = final_report(events)
        return json.loads(mask_secrets(json.dumps(report, default=str)))

    async def on_task_deleted(self, env: EventEnvelope, e: ev.TaskDeleted, seq: int) -> None:
        await purge_task(self.conn, env, seq)
        self.deleted_tasks.add(env.task_id)

    async def on_task_logs_purged(self, env: EventEnvelope, e: ev.TaskLogsPurged, seq: int) -> None:
        """Log retention: the log rows made before this event go, and so do the log events' text in the
        store. Lines derived from task events (started, finished) are rows only: a rebuild makes them
        again and then deletes them here again, so it ends with the same rows."""
        await purge_logs(self.conn, env.task_id, seq)
        self.logs_purged_tasks.add(env.task_id)

    async def on_task_files_cleaned(self, env: EventEnvelope, e: ev.TaskFilesCleaned, seq: int) -> None:
        """File retention: the files go (after the commit); the records say so."""
        await self.conn.execute(
            "UPDATE data_pipeline_task_executions SET files_cleaned = TRUE WHERE task_id = $1", env.task_id
        )
        await self.conn.execute(
            "UPDATE data_pipeline_task_outputs SET is_downloadable = FALSE WHERE task_id = $1", env.task_id
        )
        self.files_cleaned_tasks.add(env.task_id)

    # ---- step events -----------------------------------------------------------------------------

    async def on_step_scheduled(self, env: EventEnvelope, e: ev.StepScheduled, seq: int) -> None:
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        await self.conn.execute(
            """
            INSERT INTO data_pipeline_task_executions (task_id, execution_step, status, execution_id,
                force_executed, attempt, scheduled_at, id)
            VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7)
            ON CONFLICT (execution_id) DO NOTHING
            """,
            env.task_id,
            e.step.value,
            e.execution_id,
            e.force,
            e.attempt,
            env.occurred_at,
            seq,
        )
        stats = task["step_stats"]
        stats = {
            **stats,
            "executions": {**stats.get("executions", {}), e.step.value: e.execution_id},
            "progress": {**stats.get("progress", {}), e.step.value: 0},
        }
        step_status = {**task["step_status"], e.step.value: "pending"}
        await self._save_task(
            env.task_id,
            seq,
            env,
            current_step=e.step.value,
            step_status=step_status,
            step_stats=stats,
            progress=_progress(stats, step_status),
        )

    async def on_step_skipped(self, env: EventEnvelope, e: ev.StepSkipped, seq: int) -> None:
        await self._set_step(env, seq, e.step, "skipped", execution_id=None)

    async def on_step_retry_scheduled(self, env: EventEnvelope, e: ev.StepRetryScheduled, seq: int) -> None:
        await self._set_step(env, seq, e.step, "pending", execution_id=None)

    async def on_step_started(self, env: EventEnvelope, e: ev.StepStarted, seq: int) -> None:
        if await update_execution(
            self.conn,
            e.execution_id,
            "status = 'running', started_at = $3, runner_id = $4, last_heartbeat_at = $3",
            env.occurred_at,
            e.runner_id,
        ):
            await self._set_step(
                env, seq, e.step, "running", execution_id=e.execution_id, current_step=e.step.value
            )

    async def on_step_heartbeat(self, env: EventEnvelope, e: ev.StepHeartbeat, seq: int) -> None:
        await update_execution(self.conn, e.execution_id, "last_heartbeat_at = $3", env.occurred_at)

    async def on_step_progress(self, env: EventEnvelope, e: ev.StepProgress, seq: int) -> None:
        if not await update_execution(
            self.conn,
            e.execution_id,
            "progress = $3, last_heartbeat_at = $4",
            int(e.percent),
            env.occurred_at,
        ):
            return
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        stats = task["step_stats"]
        if stats.get("executions", {}).get(e.step.value) != e.execution_id:  # not the current execution
            return
        stats = {**stats, "progress": {**stats.get("progress", {}), e.step.value: float(e.percent)}}
        await self._save_task(
            env.task_id, seq, env, step_stats=stats, progress=_progress(stats, task["step_status"])
        )

    async def on_step_succeeded(self, env: EventEnvelope, e: ev.StepSucceeded, seq: int) -> None:
        if await finish_execution(self.conn, env, e.execution_id, "completed", None, e.summary):
            await self._set_step(env, seq, e.step, "completed", execution_id=e.execution_id)

    async def on_step_failed(self, env: EventEnvelope, e: ev.StepFailed, seq: int) -> None:
        before = await self.conn.fetchrow(
            "SELECT runner_id, last_heartbeat_at FROM data_pipeline_task_executions WHERE execution_id = $1",
            e.execution_id,
        )
        if await finish_execution(
            self.conn, env, e.execution_id, "failed", e.error, {"retryable": e.retryable}
        ):
            if before is not None:
                context = Context(
                    runner_id=before["runner_id"],
                    last_heartbeat=before["last_heartbeat_at"],
                    execution_known=True,
                )
                await self._task_line(env, seq, context, execution_id=e.execution_id)
            await self._set_step(
                env,
                seq,
                e.step,
                "failed",
                execution_id=e.execution_id,
                error_message=mask_secrets(e.error),
                error_step=e.step.value,
            )

    async def on_step_cancelled(self, env: EventEnvelope, e: ev.StepCancelled, seq: int) -> None:
        await finish_execution(self.conn, env, e.execution_id, "cancelled", e.reason, None)
        await self._set_step(env, seq, e.step, "cancelled", execution_id=e.execution_id)

    # ---- logs and outputs ------------------------------------------------------------------------

    async def _task_line(
        self, env: EventEnvelope, seq: int, context: Context | None = None, execution_id: str | None = None
    ) -> None:
        """The task-level log line a task fact implies (shared.task_log), stored once with the fact's
        event id and seq as its row id, so redelivery and rebuild reproduce it exactly."""
        line = task_log_line(env.payload, env.producer, context)
        if line is not None:
            await self._insert_log(env, seq, execution_id=execution_id, **asdict(line))

    async def _insert_log(self, env: EventEnvelope, seq: int, **row: Any) -> None:
        if await insert_log(self.conn, env, seq, **row):
            self.logged_tasks.add(env.task_id)

    async def on_log_emitted(self, env: EventEnvelope, e: ev.LogEmitted, seq: int) -> None:
        await self._insert_log(
            env,
            seq,
            execution_id=e.execution_id,
            level=e.level,
            message=e.message,
            step_name=e.step.value if e.step else None,
            module=e.module,
            function=e.function,
            extra=e.extra,
        )

    async def on_output_registered(self, env: EventEnvelope, e: ev.OutputRegistered, seq: int) -> None:
        await upsert_output(self.conn, env, e, seq)


def _waits_for_execute(parameters: object) -> bool:
    """A task of the earlier implementation's create, not released by an execute yet."""
    return isinstance(parameters, dict) and parameters.get("wait_for_execute") is True


Handler = Callable[[Projector, EventEnvelope, Any, int], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Handler] = {
    ev.TaskCreated: Projector.on_task_created,
    ev.TaskStarted: Projector.on_task_started,
    ev.TaskRerunRequested: Projector.on_task_rerun_requested,
    ev.TaskFinished: Projector.on_task_finished,
    ev.TaskDeleted: Projector.on_task_deleted,
    ev.TaskLogsPurged: Projector.on_task_logs_purged,
    ev.TaskFilesCleaned: Projector.on_task_files_cleaned,
    ev.StepScheduled: Projector.on_step_scheduled,
    ev.StepSkipped: Projector.on_step_skipped,
    ev.StepRetryScheduled: Projector.on_step_retry_scheduled,
    ev.StepStarted: Projector.on_step_started,
    ev.StepHeartbeat: Projector.on_step_heartbeat,
    ev.StepProgress: Projector.on_step_progress,
    ev.StepSucceeded: Projector.on_step_succeeded,
    ev.StepFailed: Projector.on_step_failed,
    ev.StepCancelled: Projector.on_step_cancelled,
    ev.LogEmitted: Projector.on_log_emitted,
    ev.OutputRegistered: Projector.on_output_registered,
    **REVIEW_HANDLERS,
}
"""What each event does to the read models; checked against the catalog below, at import."""

IGNORED: frozenset[type[BaseModel]] = frozenset({ev.TaskCancelRequested})
"""Events with no effect on the read models: a cancel request shows through the scheduler's answer to it
(step_cancelled, task_finished), never by itself."""


check_dispatch_table("projector", HANDLERS.keys(), IGNORED)
