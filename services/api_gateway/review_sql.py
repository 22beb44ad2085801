"""A reviewer's SQL on the task's business database, on the spot: the project's SQL gate (parse tree,
function allow-list, EXPLAIN within the plan limits, services/step_runner/pipeline/sql_gate.py), the plan
EXPLAIN gives, and optionally the first rows (LIMIT 5).

Every query runs on a one-connection pool the business-database module opens: READ ONLY by default,
statement_timeout DP_STATEMENT_TIMEOUT_MS, DP_ALLOWED_DB_HOSTS enforced, and a total deadline here. The
connection comes from the task's own parameters (its encrypted URL in the event store, or its named
connection), never from the request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from services.api_gateway.connections import host_policy
from services.api_gateway.errors import Conflict, ServiceUnavailable
from services.api_gateway.keys import EXTRAS, POOL, SECRET_BOX, SETTINGS
from services.api_gateway.validation import task_not_found
from services.step_runner.executors.base import StepError
from services.step_runner.pipeline.sql_gate import PlanLimits, SqlGate, TableLocked
from shared import business_db, event_store
from shared.pipeline_settings import PipelineSettings
from shared.secrets import SecretError

PREVIEW_ROWS = 5
MAX_CELL_CHARS = 200
MAX_PLAN_LINES = 60


@dataclass(frozen=True)
class SqlCheck:
    passes: bool
    error: str | None = None
    plan: list[str] = field(default_factory=list)
    columns: list[str] | None = None  # None: no preview asked (or allowed)
    rows: list[list[str | None]] | None = None

    def public(self) -> dict[str, Any]:
        return vars(self).copy()


def _pipeline(request: web.Request) -> PipelineSettings:
    extras = request.app.get(EXTRAS) or {}
    found = extras.get("pipeline")
    return found if isinstance(found, PipelineSettings) else PipelineSettings()


async def task_database_url(request: web.Request, task_id: str) -> str:
    """The task's business-database URL with its password: decrypted from the task's create, or its
    named connection from the server's settings."""
    settings = request.app[SETTINGS]
    created = await event_store.task_events(request.app[POOL], task_id, types=("task_created",))
    if not created:
        raise task_not_found(task_id)
    parameters = created[0].payload.parameters  # type: ignore[union-attr]
    if parameters.db_connection_secret:
        if not settings.allow_adhoc_connections:
            raise Conflict("this gateway accepts only named connections (DP_ALLOW_ADHOC_CONNECTIONS=false)")
        try:
            return request.app[SECRET_BOX].decrypt(parameters.db_connection_secret)
        except SecretError:
            raise Conflict("the task's connection cannot be decrypted with this server's key") from None
    if parameters.db_connection_name:
        url = settings.connections.get(parameters.db_connection_name)
        if url is None:
            raise Conflict(
                f"no connection named {parameters.db_connection_name!r} is configured on the server"
            )
        return url.get_secret_value()
    return str(parameters.db_connection)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


async def check_sql(request: web.Request, task_id: str, sql: str, *, preview: bool = False) -> SqlCheck:
    """The gate's verdict on `sql` with EXPLAIN's plan and, with `preview`, the first rows; 503 when the
    business database cannot be reached."""
    pipeline = _pipeline(request)
    url = await task_database_url(request, task_id)
    timeout_ms = pipeline.statement_timeout_ms
    try:
        return await asyncio.wait_for(
            _check(request, url, sql, pipeline, preview), timeout=3 * timeout_ms / 1000 + 10
        )
    except TableLocked as exc:
        raise ServiceUnavailable(f"{exc}; try again", extra={"retryable": True}) from None
    except (business_db.BusinessDbError, StepError, TimeoutError, OSError, asyncpg.InterfaceError):
        raise ServiceUnavailable(
            "the task's business database could not be reached to check the SQL; try again",
            extra={"retryable": True},
        ) from None


async def _check(
    request: web.Request, url: str, sql: str, pipeline: PipelineSettings, preview: bool
) -> SqlCheck:
    pool = await business_db.create_pool(
        url,
        max_size=1,
        statement_timeout_ms=pipeline.statement_timeout_ms,
        policy=host_policy(request.app[SETTINGS]),
    )
    try:
        limits = PlanLimits(max_cost=pipeline.sql_max_plan_cost, max_rows=pipeline.sql_max_plan_rows)
        # an HTTP answer waits for a locked table no longer than for a slow statement
        gate = SqlGate(pool, limits, lock_patience=pipeline.statement_timeout_ms / 1000)
        verdict = await gate.check(sql)
        if verdict.statement is None:
            return SqlCheck(False, verdict.error)
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            plan = [r[0] for r in await conn.fetch(f"EXPLAIN {verdict.statement}")][:MAX_PLAN_LINES]
            if not preview:
                return SqlCheck(True, plan=plan)
            try:
                async with conn.transaction():  # a savepoint: a failing preview keeps the plan
                    records = await conn.fetch(
                        f"SELECT * FROM ({verdict.statement}) AS review_preview LIMIT {PREVIEW_ROWS}"
                    )
            except asyncpg.PostgresError as exc:
                return SqlCheck(True, f"preview failed: {business_db.describe_error(exc)}", plan, [], [])
        columns = list(records[0].keys()) if records else []
        return SqlCheck(True, None, plan, columns, [[_cell(v) for v in r.values()] for r in records])
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=2)
        except (TimeoutError, OSError):
            pool.terminate()
