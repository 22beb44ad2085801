"""Deletion and retention in the read models: a deleted task's rows and events go behind a tombstone,
log retention drops old log rows and log text, file retention marks the files gone. Handlers in the
projector's style (services/log_collector/projections.py registers RETENTION_HANDLERS); they write the
database directly, so the projector runs them outside its in-memory fold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import events as ev
from shared.event_store import purge_logs, purge_task
from shared.messages import EventEnvelope

if TYPE_CHECKING:
    from services.log_collector.projections import Projector


async def on_task_deleted(p: Projector, env: EventEnvelope, e: ev.TaskDeleted, seq: int) -> None:
    await purge_task(p.conn, env, seq)
    p.deleted_tasks.add(env.task_id)


async def on_task_logs_purged(p: Projector, env: EventEnvelope, e: ev.TaskLogsPurged, seq: int) -> None:
    """Log retention: the log rows made before this event go, and so do the log events' text in the
    store. Lines derived from task events (started, finished) are rows only: a rebuild makes them
    again and then deletes them here again, so it ends with the same rows."""
    await purge_logs(p.conn, env.task_id, seq)
    p.logs_purged_tasks.add(env.task_id)


async def on_task_files_cleaned(p: Projector, env: EventEnvelope, e: ev.TaskFilesCleaned, seq: int) -> None:
    """File retention: the files go (after the commit); the records say so."""
    await p.conn.execute(
        "UPDATE data_pipeline_task_executions SET files_cleaned = TRUE WHERE task_id = $1", env.task_id
    )
    await p.conn.execute(
        "UPDATE data_pipeline_task_outputs SET is_downloadable = FALSE WHERE task_id = $1", env.task_id
    )
    p.files_cleaned_tasks.add(env.task_id)


RETENTION_HANDLERS: dict[type[Any], Any] = {
    ev.TaskDeleted: on_task_deleted,
    ev.TaskLogsPurged: on_task_logs_purged,
    ev.TaskFilesCleaned: on_task_files_cleaned,
}
