"""The earlier implementation's database tools at their old paths (ext, issue #14 item 8):

- `POST /api/v0/database/tables` `{db_connection, schema: "public,ods", table_name_pattern: "ods_*"}`:
  table names as `schema.table` strings, and the richer objects beside them (`table_details`).
- `POST /api/v0/database/table/ddl` `{db_connection, table, business_context, type}`: one table's DDL
  and Markdown, made by the step runner's own generation (services/step_runner/pipeline/one_table.py)
  with the offline LLM, so a call costs no tokens and sends nothing out.

Connection URLs go through the same policy as every other route (named connections, the caller's
scope, DP_ALLOW_ADHOC_CONNECTIONS, DP_ALLOWED_DB_HOSTS); failures are one generic 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from services.api_gateway.auth import usable_connections
from services.api_gateway.connections import (
    ResolvedConnection,
    business_db_failure,
    host_policy,
    resolve_connection,
)
from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams, MissingParams, NotFound
from services.api_gateway.keys import SETTINGS
from services.api_gateway.schemas.earlier_routes import (
    DatabaseTableNames,
    DatabaseTablesByPattern,
    TableDdl,
    TableDdlRequest,
    schema_list,
)
from services.api_gateway.spec import RouteSpec
from services.api_gateway.validation import blank, parse_model, read_json_object
from services.step_runner.offline.provider import OfflineTextToSQLModel
from services.step_runner.pipeline.one_table import (
    TableDocument,
    TableListError,
    TableNotFound,
    document_table,
)
from shared import business_db
from shared.settings import GatewaySettings

DATABASE = "/api/v0/database"
MAX_TABLES = 1000


def _with_default_connection(body: dict[str, Any], settings: GatewaySettings) -> dict[str, Any]:
    """`db_connection` may be left out when the server names a default connection (as the earlier
    implementation used its configured database)."""
    if blank(body.get("db_connection")):
        default = getattr(settings, "default_connection", None)
        if not default:
            raise MissingParams(
                "missing required parameters: db_connection (this server has no default connection)",
                missing=["db_connection"],
            )
        body = {**body, "db_connection": default}
    return body


def _connection_url(request: web.Request, db_connection: str) -> ResolvedConnection:
    settings = request.app[SETTINGS]
    return resolve_connection(
        db_connection, usable_connections(request, db_connection.strip()), settings=settings
    )


def _pattern(table_name_pattern: str | None) -> str | None:
    """The earlier pattern (`ods_*`, `ods_%`) as business_db's glob (`*` any text)."""
    if table_name_pattern is None or not table_name_pattern.strip():
        return None
    return table_name_pattern.strip().replace("%", "*")


async def list_tables_by_pattern(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = _with_default_connection(await read_json_object(request), settings)
    req = parse_model(DatabaseTablesByPattern, body)
    try:
        schemas = schema_list(req.schema_names)
    except ValueError as exc:
        raise InvalidParams(f"schema: {exc}", invalid=["schema"]) from None
    connection = _connection_url(request, req.db_connection)
    pattern = _pattern(req.table_name_pattern)
    deadline = settings.database_tables_timeout_seconds
    details: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(deadline):
            for schema in schemas:
                details += await business_db.list_tables(
                    connection.url, schema, pattern, limit=MAX_TABLES, policy=host_policy(settings)
                )
    except (business_db.BusinessDbError, TimeoutError) as exc:
        raise business_db_failure(exc, deadline) from None
    details = details[:MAX_TABLES]
    data = DatabaseTableNames(
        tables=[f"{t['schema']}.{t['name']}" for t in details],
        table_details=details,
        total=len(details),
        schemas=schemas,
        table_name_pattern=req.table_name_pattern,
        db_connection_info={"database": connection.database, "connection": connection.name},
    )
    return ok(f"{len(details)} tables", data.model_dump(mode="json"))


def _fields(doc: TableDocument) -> list[dict[str, Any]]:
    info = doc.table.info
    foreign = {c for fk in info.foreign_keys for c in fk.columns}
    return [
        {
            "name": c.name,
            "type": c.data_type,
            "nullable": c.nullable,
            "comment": c.comment,
            "is_primary_key": c.is_primary_key,
            "is_foreign_key": c.name in foreign,
            "default_value": c.default,
            "is_enum": c.enum_values is not None,
            "enum_values": c.enum_values,
        }
        for c in info.columns
    ]


async def table_ddl(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = _with_default_connection(await read_json_object(request), settings)
    if blank(body.get("table")):
        raise MissingParams("missing required parameters: table", missing=["table"])
    req = parse_model(TableDdlRequest, body)
    connection = _connection_url(request, req.db_connection)
    deadline = settings.database_tables_timeout_seconds
    llm = OfflineTextToSQLModel()
    try:
        async with asyncio.timeout(deadline):
            doc = await document_table(
                connection.url,
                req.table,
                req.business_context,
                llm=llm,
                policy=host_policy(settings),
                statement_timeout_ms=int(deadline * 1000),
            )
    except TableListError as exc:
        raise InvalidParams(str(exc), invalid=["table"]) from None
    except TableNotFound as exc:
        raise NotFound(str(exc), extra={"table": req.table}) from None
    except (business_db.BusinessDbError, TimeoutError) as exc:
        raise business_db_failure(exc, deadline) from None
    finally:
        await llm.aclose()
    info = doc.table.info
    data = TableDdl(
        ddl=doc.ddl if req.type in ("ddl", "both") else None,
        md=doc.markdown if req.type in ("md", "both") else None,
        table_info={
            "table_name": info.name,
            "schema_name": info.schema_name,
            "full_name": doc.table.ref.qualified,
            "comment": info.comment,
            "field_count": len(info.columns),
            "row_count": info.estimated_rows,
            "kind": doc.table.kind,
        },
        fields=_fields(doc),
        generation_info={
            "business_context": req.business_context,
            "output_type": req.type,
            "has_llm_comments": doc.filled > 0,
            "llm": llm.name,
            "database": connection.database,
        },
    )
    return ok(f"DDL of {doc.table.ref.qualified}", data.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATABASE}/tables",
        list_tables_by_pattern,
        "List a business database's tables as schema.table names (the earlier implementation's path)",
        "database",
        body=DatabaseTablesByPattern,
        response=DatabaseTableNames,
        errors=(400, 401, 413, 415, 503),
        role="operator",
        rate_limited=True,
    ),
    RouteSpec(
        "POST",
        f"{DATABASE}/table/ddl",
        table_ddl,
        "One table's DDL and Markdown, as step 1 writes them (the earlier implementation's path)",
        "database",
        body=TableDdlRequest,
        response=TableDdl,
        errors=(400, 401, 404, 413, 415, 503),
        role="operator",
        rate_limited=True,
    ),
]
