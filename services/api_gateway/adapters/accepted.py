"""The gateway's intake journal: tasks it accepted (202) that the collector may not have recorded yet.

`POST /tasks` writes a row *before* publishing `CreateTask`, so the id it answers with is addressable at
once: detail (a `pending` view), cancel and delete work while the scheduler or the collector lags. The
row holds ids, type, mode and a time only (no parameters, no text), and the gateway is its only writer;
the read models stay the collector's. A row stops mattering when the task shows in the read model or is
tombstoned: a create that saw its task recorded deletes its own row (`recorded`), and the rest are pruned
by a full scan at most every few seconds per gateway (`Pruner`), or after `DP_ACCEPTED_TASK_TTL_SECONDS`
when the task counts as lost.
The age of the oldest row that still matters is the honest measure of the collector's lag that
`/readyz` reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from shared.steps import STEP_ORDER

# "Not yet recorded": neither in the read model nor tombstoned.
NOT_RECORDED = """
    NOT EXISTS (SELECT 1 FROM data_pipeline_tasks t WHERE t.id = a.task_id)
    AND NOT EXISTS (SELECT 1 FROM task_tombstones d WHERE d.task_id = a.task_id)
"""
# ... and not given up as lost ($1: the TTL in seconds).
_WAITING = NOT_RECORDED + " AND a.accepted_at > now() - make_interval(secs => $1)"
# ... and accepted after the newest task the read model shows. The collector records tasks in the order
# they were accepted, so an older task still missing behind a newer recorded one was lost on the way
# (a dead-lettered or refused command), not delayed: it must not keep readiness down until its TTL.
_BEHIND = (
    _WAITING
    + " AND a.accepted_at > coalesce((SELECT max(t.created_at) FROM data_pipeline_tasks t), '-infinity')"
)
_STEPS = [step.value for step in STEP_ORDER]


async def record(
    pool: asyncpg.Pool, task_id: str, task_type: str, execution_mode: str, single_step: int | None
) -> datetime:
    """Note the task as accepted; returns the acceptance time (the database's clock)."""
    accepted_at: datetime = await pool.fetchval(
        "INSERT INTO accepted_commands (task_id, task_type, execution_mode, single_step)"
        " VALUES ($1, $2, $3, $4) RETURNING accepted_at",
        task_id,
        task_type,
        execution_mode,
        single_step,
    )
    return accepted_at


# The read model's row of a task, and, once it is there, the journal row gone in the same statement.
_RECORDED_THEN_FORGOTTEN = """
WITH recorded AS (SELECT status, created_at FROM data_pipeline_tasks WHERE id = $1),
     forgotten AS (DELETE FROM accepted_commands WHERE task_id = $1 AND EXISTS (SELECT 1 FROM recorded))
SELECT status, created_at FROM recorded
"""


async def recorded(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record | None:
    """The read model's row of a new task (status, created_at), None until the collector has recorded
    it; a recorded task's journal row is deleted by the same statement (one round trip per create)."""
    row: asyncpg.Record | None = await pool.fetchrow(_RECORDED_THEN_FORGOTTEN, task_id)
    return row


async def forget(pool: asyncpg.Pool, task_id: str) -> None:
    """The command was not published (or the task is visible already): drop the note."""
    await pool.execute("DELETE FROM accepted_commands WHERE task_id = $1", task_id)


async def prune(pool: asyncpg.Pool, ttl_seconds: float) -> None:
    """Remove rows that no longer matter: recorded, tombstoned, or lost (older than the TTL)."""
    await pool.execute(f"DELETE FROM accepted_commands a WHERE NOT ({_WAITING})", ttl_seconds)


class Pruner:
    """`prune` at most once every `interval` seconds (it scans the whole journal); one per gateway."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last = float("-inf")

    async def maybe(self, pool: asyncpg.Pool, ttl_seconds: float) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        await prune(pool, ttl_seconds)
        return True


PRUNER = web.AppKey("accepted_pruner", Pruner)


def pending_view(
    task_id: str, task_type: str, execution_mode: str, single_step: int | None, accepted_at: datetime
) -> dict[str, Any]:
    """An accepted task in the read model's task columns, so every view renders it; `recorded` is False."""
    single = single_step if execution_mode == "single" else None
    step_status = {
        step: "pending" if single is None or single == i else "skipped" for i, step in enumerate(_STEPS, 1)
    }
    return {
        "id": task_id,
        "task_type": task_type,
        "task_name": None,
        "status": "pending",
        "parameters": {},
        "result": None,
        "error_message": None,
        "error_step": None,
        "progress": 0,
        "current_step": None,
        "step_status": step_status,
        "step_stats": {},
        "execution_mode": execution_mode,
        "single_step": single_step,
        "created_at": accepted_at,
        "started_at": None,
        "completed_at": None,
        "updated_at": accepted_at,
        "created_by": "api",
        "output_directory": None,
        "db_name": None,
        "business_context": None,
        "recorded": False,
    }


async def unrecorded(pool: asyncpg.Pool, task_id: str) -> dict[str, Any] | None:
    """The `pending` view of an accepted task the read model does not show yet (None when there is none)."""
    row = await pool.fetchrow(
        "SELECT task_id, task_type, execution_mode, single_step, accepted_at FROM accepted_commands a"
        f" WHERE a.task_id = $1 AND {NOT_RECORDED}",
        task_id,
    )
    if row is None:
        return None
    return pending_view(
        row["task_id"], row["task_type"], row["execution_mode"], row["single_step"], row["accepted_at"]
    )


@dataclass(frozen=True)
class Lag:
    seconds: float
    waiting: int


async def lag(pool: asyncpg.Pool, ttl_seconds: float) -> Lag:
    """Age of the oldest accepted task the collector has not reached yet (0 when none), and how many."""
    row = await pool.fetchrow(
        "SELECT coalesce(EXTRACT(EPOCH FROM now() - min(accepted_at)), 0)::float8 AS seconds,"
        f" count(*) AS waiting FROM accepted_commands a WHERE {_BEHIND}",
        ttl_seconds,
    )
    assert row is not None
    return Lag(seconds=max(float(row["seconds"]), 0.0), waiting=int(row["waiting"]))
