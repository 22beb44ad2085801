"""Read-only access to a business PostgreSQL database.

Every session is opened with `default_transaction_read_only` and a statement timeout, every query has a
client-side `command_timeout` too (a server that accepts the connection and then stalls cannot hold a
step or a request), and every query the pipeline sends runs inside an explicit READ ONLY transaction:
the product reads the customer's database, it never writes it.

The URL is parsed and checked by `shared.connection_url` (allowed query parameters, DP_ALLOWED_DB_HOSTS)
and the driver gets explicit keyword arguments from that parse, never the raw text. A failure to connect
is one generic message with a reference; the cause is logged on the server only, so the caller cannot use
the pipeline to tell a closed port from a silent one or a PostgreSQL server from another service.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.connection_url import ConnectionUrlError, DbUrl, HostNotAllowed, HostPolicy, parse_db_url
from shared.logging import get_logger
from shared.secrets import mask_secrets

CONNECT_TIMEOUT_SECONDS = 10.0
# Added to the statement timeout to make the client-side deadline of every query: the server should end
# a slow statement first; this ends a server that does not answer at all.
COMMAND_TIMEOUT_MARGIN_SECONDS = 5.0
MAX_ERROR_CHARS = 300
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
ALLOW_ALL = HostPolicy()


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
    """A one-line cause with every password masked, at most MAX_ERROR_CHARS long (a hostile server
    chooses its error text)."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, asyncpg.PostgresError):
        text = f"{type(exc).__name__}: {text}"
    text = mask_secrets(text[: MAX_ERROR_CHARS * 4])
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


def connection_error(exc: BaseException) -> BusinessDbError:
    """One generic message for every failure to connect; the cause goes to the server log only.

    Wrong credentials or database are permanent, network trouble is not (the classification steers the
    runner's retries; the caller sees the same text either way)."""
    permanent = (
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InsufficientPrivilegeError,
        asyncpg.ClientConfigurationError,
        ValueError,
    )
    reference = secrets.token_hex(6)
    get_logger().warning(
        "cannot connect to the business database", reference=reference, error=describe_error(exc)
    )
    return BusinessDbError(
        f"cannot connect to the business database (reference {reference}; the cause is in the server log)",
        retryable=not isinstance(exc, permanent),
    )


def command_timeout(statement_timeout_ms: int) -> float:
    return statement_timeout_ms / 1000 + COMMAND_TIMEOUT_MARGIN_SECONDS


async def target(url: str, policy: HostPolicy | None) -> DbUrl:
    """The parsed URL with its hosts checked against `policy` (and pinned to checked addresses)."""
    try:
        return await (policy or ALLOW_ALL).pinned(parse_db_url(url))
    except (ConnectionUrlError, HostNotAllowed) as exc:
        raise BusinessDbError(str(exc)) from None


def _connect_args(db: DbUrl, statement_timeout_ms: int) -> dict[str, Any]:
    kwargs = db.connect_kwargs()
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
    kwargs["command_timeout"] = command_timeout(statement_timeout_ms)
    kwargs["server_settings"] = {
        "statement_timeout": str(statement_timeout_ms),
        "default_transaction_read_only": "on",
        "application_name": db.param.get("application_name", "data_pipeline"),
    }
    return kwargs


async def connect(
    url: str, *, statement_timeout_ms: int = 5000, policy: HostPolicy | None = None
) -> asyncpg.Connection:
    db = await target(url, policy)
    try:
        return await asyncpg.connect(**_connect_args(db, statement_timeout_ms))
    except Exception as exc:
        raise connection_error(exc) from None


async def create_pool(
    url: str, *, max_size: int, statement_timeout_ms: int = 5000, policy: HostPolicy | None = None
) -> asyncpg.Pool:
    db = await target(url, policy)
    try:
        pool = await asyncpg.create_pool(
            min_size=1, max_size=max_size, **_connect_args(db, statement_timeout_ms)
        )
    except Exception as exc:
        raise connection_error(exc) from None
    assert pool is not None
    return pool


async def close(conn: asyncpg.Connection, timeout: float = 2.0) -> None:
    """Close politely, but never wait long on a server that stopped answering."""
    try:
        await conn.close(timeout=timeout)
    except Exception:
        conn.terminate()


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
       left(obj_description(c.oid, 'pg_class'), 1000) AS comment,  -- bounded: the server chooses it
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
    policy: HostPolicy | None = None,
) -> list[dict[str, Any]]:
    """Tables and views a user can pick for a task: schema, name, kind, estimated_rows, comment, readable.

    `pattern` is a case-insensitive glob on the table name or `schema.name` (no wildcard: substring).
    `estimated_rows` is the planner's estimate (None when the table was never analyzed).
    """
    conn = await connect(url, statement_timeout_ms=statement_timeout_ms, policy=policy)
    try:
        async with read_only(conn):
            rows = await conn.fetch(
                _LIST_TABLES,
                list(_SYSTEM_SCHEMAS),
                schema,
                _like_pattern(pattern) if pattern else None,
                limit,
            )
    except BaseException as exc:
        conn.terminate()  # cancelled or failed: never wait on a server that may have stopped answering
        if isinstance(exc, asyncpg.PostgresError):
            raise BusinessDbError(f"cannot list tables: {describe_error(exc)}") from None
        if isinstance(exc, OSError | asyncpg.InterfaceError | TimeoutError):
            raise BusinessDbError(f"cannot list tables: {describe_error(exc)}", retryable=True) from None
        raise
    await close(conn)
    return [dict(row) for row in rows]
