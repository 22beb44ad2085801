"""Listing a business database's tables so the UI can pick them (ext): POST /database/tables."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from services.api_gateway.auth import usable_connections
from services.api_gateway.connections import business_db_failure, host_policy, resolve_connection
from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams, MissingParams
from services.api_gateway.keys import SETTINGS
from services.api_gateway.schemas.earlier_routes import schema_list
from services.api_gateway.schemas.requests import DatabaseTablesRequest
from services.api_gateway.schemas.responses import DatabaseTables
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import missing_fields, parse_model, read_json_object
from shared import business_db


async def list_database_tables(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if missing_fields(body, ["db_connection"]):
        raise MissingParams("missing required parameters: db_connection", missing=["db_connection"])
    req = parse_model(DatabaseTablesRequest, body)
    if req.pattern is not None and req.table_name_pattern is not None:  # the schema's at_most_one_of
        raise InvalidParams(
            "give pattern or table_name_pattern, not both", invalid=["pattern", "table_name_pattern"]
        )
    pattern = req.pattern or (req.table_name_pattern or "").replace("%", "*") or None
    try:
        # Several schemas, comma-separated, as the earlier implementation took them; none: every schema.
        schemas: list[str | None] = [*schema_list(req.schema_name)] if req.schema_name else [None]
    except ValueError as exc:
        raise InvalidParams(f"schema: {exc}", invalid=["schema"]) from None
    settings = request.app[SETTINGS]
    connection = resolve_connection(
        req.db_connection, usable_connections(request, req.db_connection.strip()), settings=settings
    )
    deadline = settings.database_tables_timeout_seconds
    tables: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(deadline):
            for schema in schemas:
                tables += await business_db.list_tables(
                    connection.url, schema, pattern, policy=host_policy(settings)
                )
    except (business_db.BusinessDbError, TimeoutError) as exc:
        raise business_db_failure(exc, deadline) from None
    data = DatabaseTables(tables=tables, total=len(tables), schema_name=req.schema_name)
    return ok(f"{len(tables)} tables", data.model_dump(mode="json", by_alias=True))


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/database/tables",
        list_database_tables,
        "List the tables of a business database (ext)",
        "database",
        body=DatabaseTablesRequest,
        response=DatabaseTables,
        errors=(400, 401, 415, 503),
        role="operator",
        rate_limited=True,
    ),
]
