"""Applies stored events to the read models (tasks, executions, logs, outputs).

Used by the live consumer and by `rebuild` alike, so replaying the store yields the same rows. The
handlers change the rows of a batch in memory (`self.uow`, services/log_collector/unit_of_work.py) and
`flush` writes each touched row once; a handler outside `FOLDED` (new event types, purges) runs on the
database with the memory flushed before and dropped after it. Every timestamp comes from the event,
never from the clock, and every row id is the sequence number of the event that created the row: a
rebuild reproduces the ids even though deleted tasks' events are purged from the store. Terminal states never move back: a late event for a finished execution or task changes
nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.log_collector import rows
from services.log_collector.final_reports import final_reports
from services.log_collector.retention_projection import RETENTION_HANDLERS
from services.log_collector.review_projection import REVIEW_HANDLERS
from services.log_collector.unit_of_work import LaterReport, UnitOfWork, utc
from shared import events as ev
from shared.event_compaction import FinishedExecution
from shared.events import StepName, check_dispatch_table
from shared.lifecycle import is_old_execution, task_finished
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets
from shared.steps import STEP_ORDER
from shared.task_log import Context, task_log_line


class Projector:
    """One instance per transaction; `apply` dispatches on the event's class through `HANDLERS`, in order."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.uow = UnitOfWork(conn, final_reports)
        self.deleted_tasks: set[str] = set()
        self.logged_tasks: set[str] = set()
        self.logs_purged_tasks: set[str] = set()  # data_pipeline.log goes (log retention)
        self.files_cleaned_tasks: set[str] = set()  # the task directory goes (file retention)
        self.finished_executions: list[FinishedExecution] = []  # for compaction (shared/event_compaction.py)
        self.noop_beats: list[int] = []  # seqs of beats that arrived after their execution had finished
        self.coalesced_beats = 0  # beats of the batch left out (a later one overwrites them)

    async def load(self, events: Sequence[tuple[int, EventEnvelope]]) -> None:
        """Read the rows the events name, in two statements, before applying them."""
        executions = (getattr(env.payload, "execution_id", None) for _, env in events)
        await self.uow.load({env.task_id for _, env in events}, {e for e in executions if e})

    async def apply(self, env: EventEnvelope, seq: int) -> None:
        handler = HANDLERS.get(type(env.payload))
        if handler is None:
            return
        if type(env.payload) in FOLDED:
            await handler(self, env, env.payload, seq)
            return
        await self.uow.flush()
        await handler(self, env, env.payload, seq)
        await self.uow.flush()
        self.uow.forget(env.task_id)

    async def flush(self) -> None:
        await self.uow.flush()

    # ---- helpers ---------------------------------------------------------------------------------

    async def _task(self, task_id: str) -> dict[str, Any] | None:
        """The task's row (read-only: change it through `_save_task`), None when there is none."""
        return await self.uow.task(task_id)

    async def _save_task(self, task_id: str, seq: int, env: EventEnvelope, **fields: Any) -> None:
        fields["updated_at"] = env.occurred_at
        fields["last_event_seq"] = seq
        self.uow.update_task(
            task_id, {k: utc(v) if isinstance(v, datetime) else v for k, v in fields.items()}
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
            progress=rows.progress_of(stats, step_status),
            **extra,
        )

    # ---- task events -----------------------------------------------------------------------------

    async def on_task_created(self, env: EventEnvelope, e: ev.TaskCreated, seq: int) -> None:
        params = e.parameters
        plan = [s.value for s in e.steps]
        # Steps outside the plan (single mode, a range) are skipped; why is in step_stats["skipped"].
        step_status = {s.value: ("pending" if s.value in plan else "skipped") for s in STEP_ORDER}
        skipped = {s.value: reason for s, reason in e.skipped.items()}
        if await self._task(env.task_id) is not None:
            return
        at = utc(env.occurred_at)
        self.uow.create_task(
            {
                "id": env.task_id,
                "task_type": e.task_type,
                "task_name": params.task_name,
                "status": "pending",
                "parameters": params.public(),
                "progress": 0,
                "step_status": step_status,
                "step_stats": {"plan": plan, "skipped": skipped, "progress": {}, "executions": {}},
                "execution_mode": params.execution_mode,
                "single_step": params.single_step,
                "created_at": at,
                "updated_at": at,
                "created_by": e.created_by,
                "output_directory": e.output_directory,
                "db_name": params.db_name,
                "business_context": params.business_context,
                "last_event_seq": seq,
            }
        )

    async def on_task_started(self, env: EventEnvelope, e: ev.TaskStarted, seq: int) -> None:
        task = await self._task(env.task_id)
        if task and task["status"] == "pending":
            await self._save_task(env.task_id, seq, env, status="in_progress", started_at=env.occurred_at)
            await self._task_line(env, seq)

    async def on_task_rerun_requested(self, env: EventEnvelope, e: ev.TaskRerunRequested, seq: int) -> None:
        task = await self._task(env.task_id)
        waiting = (
            task is not None and task["status"] == "pending" and rows.waits_for_execute(task["parameters"])
        )
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
            progress=rows.progress_of(stats, step_status),
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
            "result": LaterReport(seq),  # made with the other finishing tasks' at the flush
            "current_step": None,
        }
        if e.status == "completed":
            fields["progress"] = 100
        failed_step = task["error_step"]
        await self._save_task(env.task_id, seq, env, **fields)
        await self._task_line(env, seq, Context(failed_step=failed_step))

    # ---- step events -----------------------------------------------------------------------------

    async def on_step_scheduled(self, env: EventEnvelope, e: ev.StepScheduled, seq: int) -> None:
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        if await self.uow.execution(e.execution_id) is None:
            self.uow.create_execution(
                {
                    "id": seq,
                    "task_id": env.task_id,
                    "execution_step": e.step.value,
                    "status": "pending",
                    "execution_id": e.execution_id,
                    "force_executed": e.force,
                    "attempt": e.attempt,
                    "progress": 0,
                    "scheduled_at": utc(env.occurred_at),
                }
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
            progress=rows.progress_of(stats, step_status),
        )

    async def on_step_skipped(self, env: EventEnvelope, e: ev.StepSkipped, seq: int) -> None:
        await self._set_step(env, seq, e.step, "skipped", execution_id=None)

    async def on_step_retry_scheduled(self, env: EventEnvelope, e: ev.StepRetryScheduled, seq: int) -> None:
        await self._set_step(env, seq, e.step, "pending", execution_id=None)

    async def on_step_started(self, env: EventEnvelope, e: ev.StepStarted, seq: int) -> None:
        if await rows.update_execution(
            self.uow,
            e.execution_id,
            status="running",
            started_at=env.occurred_at,
            runner_id=e.runner_id,
            last_heartbeat_at=env.occurred_at,
        ):
            await self._set_step(
                env, seq, e.step, "running", execution_id=e.execution_id, current_step=e.step.value
            )

    async def _beat(self, env: EventEnvelope, seq: int, execution_id: str, **fields: Any) -> bool:
        if await rows.update_execution(self.uow, execution_id, last_heartbeat_at=env.occurred_at, **fields):
            return True
        if await self.uow.execution(execution_id) is not None:  # finished: the beat can never matter
            self.noop_beats.append(seq)
        return False

    async def on_step_heartbeat(self, env: EventEnvelope, e: ev.StepHeartbeat, seq: int) -> None:
        await self._beat(env, seq, e.execution_id)

    async def on_step_progress(self, env: EventEnvelope, e: ev.StepProgress, seq: int) -> None:
        if not await self._beat(env, seq, e.execution_id, progress=int(e.percent)):
            return
        task = await self._task(env.task_id)
        if task is None or task_finished(task["status"]):
            return
        stats = task["step_stats"]
        if stats.get("executions", {}).get(e.step.value) != e.execution_id:  # not the current execution
            return
        stats = {**stats, "progress": {**stats.get("progress", {}), e.step.value: float(e.percent)}}
        await self._save_task(
            env.task_id, seq, env, step_stats=stats, progress=rows.progress_of(stats, task["step_status"])
        )

    async def on_step_succeeded(self, env: EventEnvelope, e: ev.StepSucceeded, seq: int) -> None:
        if await self._finish(env, seq, e.execution_id, "completed", None, e.summary):
            await self._set_step(env, seq, e.step, "completed", execution_id=e.execution_id)

    async def on_step_failed(self, env: EventEnvelope, e: ev.StepFailed, seq: int) -> None:
        execution = await self.uow.execution(e.execution_id)
        before = dict(execution) if execution else None
        if await self._finish(env, seq, e.execution_id, "failed", e.error, {"retryable": e.retryable}):
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
        await self._finish(env, seq, e.execution_id, "cancelled", e.reason, None)
        await self._set_step(env, seq, e.step, "cancelled", execution_id=e.execution_id)

    async def _finish(self, env: EventEnvelope, seq: int, exec_id: str | None, *outcome: Any) -> bool:
        if not await rows.finish_execution(self.uow, env, exec_id, *outcome):
            return False
        row = await self.uow.execution(exec_id)
        assert exec_id and row is not None
        # Every beat moves last_heartbeat_at past the start (which sets it): without one there is
        # nothing to compact, and a quick step's finish spares the compaction's query.
        if row["last_heartbeat_at"] != row["started_at"]:
            self.finished_executions.append(FinishedExecution(env.task_id, exec_id, row["id"], seq))
        return True

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
        if await rows.insert_log(self.uow, env, seq, **row):
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
        await rows.upsert_output(self.uow, env, e, seq)


Handler = Callable[[Projector, EventEnvelope, Any, int], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Handler] = {
    ev.TaskCreated: Projector.on_task_created,
    ev.TaskStarted: Projector.on_task_started,
    ev.TaskRerunRequested: Projector.on_task_rerun_requested,
    ev.TaskFinished: Projector.on_task_finished,
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
    **RETENTION_HANDLERS,
    **REVIEW_HANDLERS,
}
"""What each event does to the read models; checked against the catalog below, at import."""

FOLDED: frozenset[type[BaseModel]] = frozenset(
    {
        ev.TaskCreated, ev.TaskStarted, ev.TaskRerunRequested, ev.TaskFinished, ev.StepScheduled,
        ev.StepSkipped, ev.StepRetryScheduled, ev.StepStarted, ev.StepHeartbeat, ev.StepProgress,
        ev.StepSucceeded, ev.StepFailed, ev.StepCancelled, ev.LogEmitted, ev.OutputRegistered,
    }
)  # fmt: skip
"""Handlers that change rows only through `_task`/`_save_task`/`uow`, on the batch's memory. Any other
handler (purges, file retention, review events, types added later) is free to use `self.conn`."""

IGNORED: frozenset[type[BaseModel]] = frozenset({ev.TaskCancelRequested})
"""Events with no effect on the read models: a cancel request shows through the scheduler's answer to it
(step_cancelled, task_finished), never by itself."""


check_dispatch_table("projector", HANDLERS.keys(), IGNORED)
