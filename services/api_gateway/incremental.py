"""The earlier task an incremental run starts from (`incremental_from` on create, `since_task` on
GET /database/diff): a task id, or `latest` = the newest completed task on the same database.

The earlier task must exist, have run on the same database (the same masked connection URL), and have
left a schema catalog with table fingerprints (its step 1 ran on a version that records them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from services.api_gateway.errors import InvalidParams
from services.step_runner.pipeline.incremental import Baseline, BaselineError, load_baseline

LATEST = "latest"
_LATEST_CANDIDATES = 20


async def resolve_base(
    pool: asyncpg.Pool, data_root: Path, value: str, db_connection: str, *, field: str
) -> Baseline:
    """The earlier task's step 1 results. `db_connection`: the new run's masked URL. 400 naming `field`
    when there is none to start from."""
    if value == LATEST:
        rows = await pool.fetch(
            "SELECT id FROM data_pipeline_tasks WHERE status = 'completed' "
            "AND parameters->>'db_connection' = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            db_connection,
            _LATEST_CANDIDATES,
        )
        for row in rows:
            try:
                return await asyncio.to_thread(load_baseline, data_root, row["id"])
            except BaselineError:
                continue
        raise InvalidParams(
            f"{field}: no completed task on this database has a schema catalog with table fingerprints "
            "to compare with; run one task without it first",
            invalid=[field],
        )
    row = await pool.fetchrow(
        "SELECT parameters->>'db_connection' AS db_connection FROM data_pipeline_tasks WHERE id = $1", value
    )
    if row is None:
        raise InvalidParams(f"{field}: task {value} does not exist", invalid=[field])
    if row["db_connection"] != db_connection:
        raise InvalidParams(
            f"{field}: task {value} ran on another database ({row['db_connection']}), not on {db_connection}",
            invalid=[field],
        )
    try:
        return await asyncio.to_thread(load_baseline, data_root, value)
    except BaselineError as exc:
        raise InvalidParams(f"{field}: {exc}", invalid=[field]) from None
