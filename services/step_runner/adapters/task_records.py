"""What a runner reads before starting work: is this command still wanted?"""

from __future__ import annotations

import asyncpg

from shared import event_store
from shared.lifecycle import execution_finished


class TaskRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def obsolete_reason(self, task_id: str, execution_id: str) -> str | None:
        """Why a RunStep need not run (task deleted, execution already finished), or None to run it."""
        async with self._pool.acquire() as conn:
            if await event_store.is_deleted(conn, task_id):
                return "the task was deleted"
            status = await conn.fetchval(
                "SELECT status FROM data_pipeline_task_executions WHERE execution_id = $1", execution_id
            )
        if execution_finished(status):
            return f"execution {execution_id} already ended {status}"
        return None
