"""Read-only access to a business PostgreSQL database.

Every session is opened with `default_transaction_read_only` and a statement timeout, and every query
the pipeline sends runs inside an explicit READ ONLY transaction as well: the product reads the
customer's database, it never writes it. Errors name the cause but never carry the password.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.secrets import mask_secrets

CONNECT_TIMEOUT_SECONDS = 10.0
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class BusinessDbError(Exception):
    """The business database cannot be reached or read; `retryable` when trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier; refuses names PostgreSQL itself cannot hold."""
    if not name or "\x00" in name:
        raise ValueError("an identifier must be a non-empty string without NUL")
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(value: str) -> str:
    """A standard-conforming string literal (only for DDL text we write to files, never for queries)."""
    if "\x00" in value:
        raise ValueError("a string literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def describe_error(exc: BaseException) -> str:
    """A one-line cause with every password masked."""
    text = str(exc).strip() or type(exc).__name__
    return mask_secrets(
        f"{type(exc).__name__}: {text}" if not isinstance(exc, asyncpg.PostgresError) else text
    )


def connection_error(exc: BaseException) -> BusinessDbError:
    """Classify a failure to connect: wrong credentials or database are permanent, network trouble is not."""
    permanent = (
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InsufficientPrivilegeError,
        ValueError,  # malformed URL
    )
    retryable = not isinstance(exc, permanent)
    return BusinessDbError(
        f"cannot connect to the business database: {describe_error(exc)}", retryable=retryable
    )


def _server_settings(statement_timeout_ms: int) -> dict[str, str]:
    return {
        "statement_timeout": str(statement_timeout_ms),
        "default_transaction_read_only": "on",
        "application_name": "data_pipeline",
    }


async def connect(url: str, *, statement_timeout_ms: int = 5000) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            url, timeout=CONNECT_TIMEOUT_SECONDS, server_settings=_server_settings(statement_timeout_ms)
        )
    except Exception as exc:
        raise connection_error(exc) from None


async def create_pool(url: str, *, max_size: int, statement_timeout_ms: int = 5000) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings=_server_settings(statement_timeout_ms),
        )
    except Exception as exc:
        raise connection_error(exc) from None
    assert pool is not None
    return pool


@asynccontextmanager
async def read_only(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A READ ONLY transaction; rolled back on error like any other."""
    async with conn.transaction(readonly=True):
        yield conn


_LIST_TABLES = """
SELECT n.nspname AS schema,
       c.relname AS name,
       CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
       obj_description(c.oid, 'pg_class') AS comment,
       has_table_privilege(c.oid, 'SELECT') AS readable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND n.nspname <> ALL($1::text[])
  AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
  AND ($2::text IS NULL OR n.nspname = $2)
  AND ($3::text IS NULL OR c.relname ILIKE $3 OR (n.nspname || '.' || c.relname) ILIKE $3)
ORDER BY n.nspname, c.relname
LIMIT $4
"""


def _like_pattern(pattern: str) -> str:
    """A glob (`order*`, `sales.?rders`) as an ILIKE pattern; a pattern without wildcards is a substring."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if "*" not in pattern and "?" not in pattern:
        return f"%{escaped}%"
    return escaped.replace("*", "%").replace("?", "_")


async def list_tables(
    url: str,
    schema: str | None = None,
    pattern: str | None = None,
    *,
    limit: int = 1000,
    statement_timeout_ms: int = 5000,
) -> list[dict[str, Any]]:
    """Tables and views a user can pick for a task: schema, name, kind, estimated_rows, comment, readable.

    `pattern` is a case-insensitive glob on the table name or `schema.name` (no wildcard: substring).
    `estimated_rows` is the planner's estimate (None when the table was never analyzed).
    """
    conn = await connect(url, statement_timeout_ms=statement_timeout_ms)
    try:
        async with read_only(conn):
            rows = await conn.fetch(
                _LIST_TABLES,
                list(_SYSTEM_SCHEMAS),
                schema,
                _like_pattern(pattern) if pattern else None,
                limit,
            )
    except asyncpg.PostgresError as exc:
        raise BusinessDbError(f"cannot list tables: {describe_error(exc)}") from None
    except (OSError, asyncpg.InterfaceError) as exc:
        raise BusinessDbError(f"cannot list tables: {describe_error(exc)}", retryable=True) from None
    finally:
        await conn.close()
    return [dict(row) for row in rows]
