"""What a runner reads before starting work: is this command still wanted?"""

from __future__ import annotations

import asyncpg

_EXEC_TERMINAL = ("completed", "failed", "cancelled")


class TaskRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def obsolete_reason(self, task_id: str, execution_id: str) -> str | None:
        """Why a RunStep need not run (task deleted, execution already finished), or None to run it."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                SELECT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = $1) AS deleted,
                       (SELECT status FROM data_pipeline_task_executions WHERE execution_id = $2) AS status
                """,
                task_id,
                execution_id,
            )
        if row["deleted"]:
            return "the task was deleted"
        if row["status"] in _EXEC_TERMINAL:
            return f"execution {execution_id} already ended {row['status']}"
        return None
