"""The pair_reviews read model (migration 0006), as the review routes read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def decisions(pool: asyncpg.Pool, task_id: str) -> dict[str, Any]:
    """pair_id -> the pair's current decision row, for the task's current review."""
    rows = await pool.fetch(
        """SELECT pair_id, status, decision, question, sql, edited, sql_valid, sql_error, actor, actor_role,
                  reviewed_at
           FROM pair_reviews WHERE task_id = $1""",
        task_id,
    )
    return {r["pair_id"]: r for r in rows}


async def decided_at(pool: asyncpg.Pool, task_id: str, pair_id: str, at: datetime) -> bool:
    """Has the read model applied the decision made at `at` (or a later one)?"""
    found = await pool.fetchval(
        "SELECT 1 FROM pair_reviews WHERE task_id = $1 AND pair_id = $2 AND reviewed_at >= $3",
        task_id,
        pair_id,
        at,
    )
    return found is not None
