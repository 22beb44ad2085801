"""What a runner reads before starting work: is this command still wanted?"""

from __future__ import annotations

import asyncpg

from shared.lifecycle import execution_finished


class TaskRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def obsolete_reason(self, task_id: str, execution_id: str) -> str | None:
        """Why a RunStep need not run (task deleted, execution already finished), or None to run it.
        One round trip: it comes before every step."""
        row = await self._pool.fetchrow(_OBSOLETE, task_id, execution_id)
        if row["deleted"]:
            return "the task was deleted"
        status = row["status"]
        if execution_finished(status):
            return f"execution {execution_id} already ended {status}"
        return None


_OBSOLETE = """
SELECT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = $1) AS deleted,
       (SELECT status FROM data_pipeline_task_executions WHERE execution_id = $2) AS status
"""
