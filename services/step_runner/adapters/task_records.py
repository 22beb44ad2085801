"""What a runner reads before starting work: is this command still wanted?"""

from __future__ import annotations

import asyncpg

from shared.lifecycle import execution_finished
from shared.turn_batches import TurnBatches

Key = tuple[str, str]  # (task id, execution id)


class TaskRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._checks: TurnBatches[Key, str | None] = TurnBatches(self._reasons)

    async def obsolete_reason(self, task_id: str, execution_id: str) -> str | None:
        """Why a RunStep need not run (task deleted, execution already finished), or None to run it.
        It comes before every step: the checks of one loop turn share one query (a burst of orders
        under load)."""
        return await self._checks.get((task_id, execution_id))

    async def _reasons(self, keys: list[Key]) -> dict[Key, str | None]:
        rows = await self._pool.fetch(_OBSOLETE, [t for t, _ in keys], [e for _, e in keys])
        return {
            (r["task_id"], r["execution_id"]): _reason(r["deleted"], r["status"], r["execution_id"])
            for r in rows
        }


def _reason(deleted: bool, status: str | None, execution_id: str) -> str | None:
    if deleted:
        return "the task was deleted"
    if execution_finished(status):
        return f"execution {execution_id} already ended {status}"
    return None


_OBSOLETE = """
SELECT c.task_id, c.execution_id,
       EXISTS (SELECT 1 FROM task_tombstones t WHERE t.task_id = c.task_id) AS deleted,
       (SELECT e.status FROM data_pipeline_task_executions e WHERE e.execution_id = c.execution_id) AS status
FROM unnest($1::varchar[], $2::varchar[]) AS c(task_id, execution_id)
"""
