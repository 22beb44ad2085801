"""GET /api/v0/data_pipeline/database/diff: what changed in a business database since a task documented it, without
running anything (so a user can decide on an incremental run: `incremental_from` on create).

The earlier task's tables are introspected again, read-only, with the step runner's own introspection and
fingerprint (services/step_runner/pipeline/fingerprint.py), within DP_DATABASE_TABLES_TIMEOUT_SECONDS.
Connections follow the rules of POST /database/tables (named connections, the caller's scope,
DP_ALLOW_ADHOC_CONNECTIONS, DP_ALLOWED_DB_HOSTS).
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from services.api_gateway.auth import usable_connections
from services.api_gateway.connections import business_db_failure, host_policy, masked_url, resolve_connection
from services.api_gateway.envelope import ok
from services.api_gateway.incremental import resolve_base
from services.api_gateway.keys import EXTRAS, POOL, SETTINGS
from services.api_gateway.schemas.incremental import SchemaDiff, SchemaDiffQuery, TableCounts
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import parse_query
from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.fingerprint import diff_fingerprints, table_fingerprint
from services.step_runner.pipeline.incremental import Baseline, schema_tables, table_key
from services.step_runner.pipeline.introspect import IntrospectionOptions, TableNotFound, introspect_table
from services.step_runner.pipeline.table_list import TableRef
from shared import business_db
from shared.connection_url import HostPolicy

DIFF_CONCURRENCY = 4  # tables introspected at once (connections to the business database)
INTROSPECTION = "introspection"  # app[EXTRAS] key: the step runner's IntrospectionOptions (same settings)


async def _fingerprints(
    url: str, baseline: Baseline, options: IntrospectionOptions, policy: HostPolicy, timeout_ms: int
) -> tuple[dict[str, str], list[str], list[str]]:
    """({schema.table: fingerprint} of the earlier task's tables now, the ones that cannot be read, and
    every table of their schemas now). A few tables at a time, on a small pool."""
    now: dict[str, str] = {}
    unreadable: list[str] = []
    pool = await business_db.create_pool(
        url, max_size=DIFF_CONCURRENCY, statement_timeout_ms=timeout_ms, policy=policy
    )

    async def one(table: TableInfo) -> None:
        async with pool.acquire() as conn:
            try:
                introspected = await introspect_table(conn, TableRef(table.schema_name, table.name), options)
            except (TableNotFound, asyncpg.PostgresError):
                unreadable.append(table_key(table))
            else:
                now[table_key(table)] = table_fingerprint(introspected)

    try:
        async with asyncio.TaskGroup() as group:  # the pool's size bounds the tables at once
            for table in baseline.catalog.tables:
                group.create_task(one(table))
        async with pool.acquire() as conn:
            in_schemas = await schema_tables(conn, [t.schema_name for t in baseline.catalog.tables])
    except BaseException:
        pool.terminate()
        raise
    await pool.close()
    return now, sorted(unreadable), in_schemas


async def database_diff(request: web.Request) -> web.Response:
    query = parse_query(SchemaDiffQuery, request)
    settings = request.app[SETTINGS]
    connection = resolve_connection(
        query.db_connection, usable_connections(request, query.db_connection.strip()), settings=settings
    )
    masked = masked_url(connection.url)
    baseline = await resolve_base(
        request.app[POOL], settings.data_root, query.since_task, masked, field="since_task"
    )
    options = request.app[EXTRAS].get(INTROSPECTION) or IntrospectionOptions()
    deadline = settings.database_tables_timeout_seconds
    try:
        async with asyncio.timeout(deadline):
            now, unreadable, in_schemas = await _fingerprints(
                connection.url, baseline, options, host_policy(settings), int(deadline * 1000)
            )
    except (business_db.BusinessDbError, TimeoutError) as exc:
        raise business_db_failure(exc, deadline) from None
    diff = diff_fingerprints(baseline.fingerprints, now)
    # Not documented by the earlier task: new since (when it recorded its schemas' tables), or not listed.
    others = set(in_schemas) - set(baseline.fingerprints)
    then = set(baseline.catalog.schema_tables)
    new = sorted({*diff.new, *(others - then if then else others)})
    not_documented = sorted(others - set(new))
    saved = sum(baseline.catalog.llm_tokens.get(t, 0) for t in diff.unchanged)
    data = SchemaDiff(
        since_task=baseline.task_id,
        db_connection=masked,
        tables=TableCounts(
            unchanged=len(diff.unchanged), changed=len(diff.changed), new=len(new), dropped=len(diff.dropped)
        ),
        unchanged=diff.unchanged,
        changed=diff.changed,
        new=new,
        dropped=diff.dropped,
        not_documented=not_documented,
        unreadable=unreadable,
        llm_tokens_at_stake=saved,
    )
    counts = data.tables
    message = (
        f"{counts.changed} changed, {counts.new} new, {counts.dropped} dropped, "
        f"{counts.unchanged} unchanged since task {baseline.task_id}"
    )
    return ok(message, data.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/database/diff",
        database_diff,
        "What changed in a business database since a task documented it (ext; incremental runs)",
        "database",
        query=SchemaDiffQuery,
        response=SchemaDiff,
        errors=(400, 401, 503),
        role="operator",
        rate_limited=True,
    ),
]
