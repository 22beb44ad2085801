"""What one table of the business database looks like, read from the system catalogs.

Work on the table's data is bounded: row counts come from pg_class.reltuples (small tables are counted
with a LIMIT, large ones never), samples and enum detection read a bounded number of rows, taken with
TABLESAMPLE on large tables. Every query runs in its own READ ONLY transaction, so a query that hits the
statement timeout costs only the fact it was after, never the whole table.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from services.step_runner.pipeline.catalog import ColumnInfo, ForeignKey, TableInfo
from services.step_runner.pipeline.table_list import TableRef
from shared.business_db import describe_error, qualified_name, quote_ident, read_only
from shared.pipeline_settings import PipelineSettings

MAX_TEXT_SAMPLE = 200
ENUM_SCAN_ROWS = 5000
SAMPLE_TARGET_ROWS = 2000  # rows a TABLESAMPLE on a large table aims at
SAMPLE_VALUE_MAX_BYTES = 4096  # a non-text sample value larger than this (on disk) reads as NULL
_TEXT_TYPES = ("text", "character varying", "character", "varchar", "char", "bpchar", "citext")


class TableNotFound(LookupError):
    """The table is not in the database, or the connecting role cannot see it."""


@dataclass(frozen=True)
class IntrospectionOptions:
    sample_rows: int = 5
    enum_max_distinct: int = 12
    large_table_rows: int = 100_000

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> IntrospectionOptions:
        return cls(
            sample_rows=settings.sample_rows,
            enum_max_distinct=settings.enum_max_distinct,
            large_table_rows=settings.large_table_rows,
        )


@dataclass(frozen=True)
class EnumType:
    schema: str
    name: str
    labels: list[str]


@dataclass(frozen=True)
class ColumnDetail:
    """What the DDL needs beyond ColumnInfo: how to recreate the column elsewhere."""

    ddl_type: str
    identity: str | None = None  # "ALWAYS" / "BY DEFAULT"
    generated: str | None = None  # expression of a stored generated column
    domain: str | None = None  # the domain the column was declared with (ddl_type is its base type)


@dataclass(frozen=True)
class IntrospectedTable:
    ref: TableRef
    info: TableInfo
    kind: str
    columns: dict[str, ColumnDetail]
    enum_types: list[EnumType]
    unique_constraints: list[list[str]]
    foreign_key_names: list[str]
    row_count_exact: bool
    warnings: list[str] = field(default_factory=list)


_RELATION = """
SELECT c.oid, c.relkind::text AS relkind, c.reltuples, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

_COLUMNS = """
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull AS not_null,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       col_description(a.attrelid, a.attnum) AS comment,
       a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS domain_base,
       CASE WHEN t.typtype = 'e' THEN t.oid
            WHEN et.typtype = 'e' THEN et.oid END AS enum_oid,
       et.typtype = 'e' AS enum_array
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_ENUMS = """
SELECT t.oid, n.nspname AS schema, t.typname AS name,
       array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.oid = ANY($1::oid[])
GROUP BY t.oid, n.nspname, t.typname
"""

_CONSTRAINTS = """
SELECT con.conname AS name, con.contype::text AS type,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS ref_columns
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'f')
ORDER BY con.contype, con.conname
"""

_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}


def json_safe(value: Any) -> Any:
    """A sample value as JSON can hold it; long text is cut, binary data only sized."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return float(value) if isinstance(exponent, int) and -6 <= exponent <= 6 else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_SAMPLE else value[:MAX_TEXT_SAMPLE] + "…"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in list(value)[:20]]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in list(value.items())[:20]}
    return json_safe(str(value))


def _source(
    relation: str, kind: str, estimated_rows: int, options: IntrospectionOptions, *, seed: int = 42
) -> str:
    """FROM clause for data reads: a TABLESAMPLE on large tables (plain tables and materialized views)."""
    if (
        kind in {"table", "partitioned table", "materialized view"}
        and estimated_rows > options.large_table_rows
    ):
        percent = max(0.01, min(100.0, 100.0 * SAMPLE_TARGET_ROWS / estimated_rows))
        return f"{relation} TABLESAMPLE SYSTEM ({percent:.4f}) REPEATABLE ({seed})"
    return relation


async def _count_rows(
    conn: asyncpg.Connection, relation: str, estimated: int, options: IntrospectionOptions
) -> tuple[int, bool]:
    """(rows, exact): counted with a LIMIT when the estimate says the table is small."""
    if estimated > options.large_table_rows:
        return estimated, False
    bound = options.large_table_rows + 1
    async with read_only(conn):
        counted = await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM {relation} LIMIT {bound}) AS s")
    if counted >= bound:
        return max(estimated, counted), False
    return int(counted), True


def _bounded_columns(column_rows: list[asyncpg.Record]) -> str:
    """The select list of a sample, bounded in bytes on the server: text cut to what json_safe keeps,
    any other value larger than SAMPLE_VALUE_MAX_BYTES read as NULL (a 1 GB value never crosses the wire)."""
    parts: list[str] = []
    for r in column_rows:
        col = quote_ident(r["name"])
        if (r["domain_base"] or r["data_type"]).split("(")[0] in _TEXT_TYPES:
            parts.append(f"left({col}::text, {MAX_TEXT_SAMPLE + 1}) AS {col}")
        else:
            parts.append(
                f"CASE WHEN pg_column_size({col}) <= {SAMPLE_VALUE_MAX_BYTES} THEN {col} END AS {col}"
            )
    return ", ".join(parts) or "*"


async def _sample_rows(
    conn: asyncpg.Connection, source: str, limit: int, column_rows: list[asyncpg.Record] | None = None
) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    select = _bounded_columns(column_rows) if column_rows else "*"
    async with read_only(conn):
        rows = await conn.fetch(f"SELECT {select} FROM {source} LIMIT {int(limit)}")
    return [{key: json_safe(value) for key, value in row.items()} for row in rows]


async def _enum_like_values(
    conn: asyncpg.Connection, source: str, candidates: list[str], options: IntrospectionOptions
) -> dict[str, list[Any]]:
    """Values of the text columns that hold few distinct values, from at most ENUM_SCAN_ROWS rows.

    A column is enum-like when it has at most enum_max_distinct values and each value repeats on average
    (so the names of ten categories in a ten-row table are not mistaken for an enum).
    """
    if not candidates:
        return {}
    cols = ", ".join(quote_ident(c) for c in candidates)
    counts = ", ".join(
        f"count(DISTINCT {quote_ident(c)}) AS d{i}, count({quote_ident(c)}) AS n{i}"
        for i, c in enumerate(candidates)
    )
    async with read_only(conn):
        row = await conn.fetchrow(
            f"SELECT {counts} FROM (SELECT {cols} FROM {source} LIMIT {ENUM_SCAN_ROWS}) s"
        )
    found: dict[str, list[Any]] = {}
    for i, column in enumerate(candidates):
        distinct, non_null = row[f"d{i}"], row[f"n{i}"]
        if 0 < distinct <= options.enum_max_distinct and distinct * 2 <= non_null:
            col = quote_ident(column)
            async with read_only(conn):
                values = await conn.fetch(
                    f"SELECT DISTINCT {col} AS v FROM (SELECT {col} FROM {source} LIMIT {ENUM_SCAN_ROWS}) s "
                    f"WHERE {col} IS NOT NULL ORDER BY 1 LIMIT {options.enum_max_distinct}"
                )
            found[column] = [json_safe(v["v"]) for v in values]
    return found


async def introspect_table(
    conn: asyncpg.Connection, ref: TableRef, options: IntrospectionOptions
) -> IntrospectedTable:
    """Raises TableNotFound, or asyncpg errors for a catalog query that fails (the table is then skipped)."""
    async with read_only(conn):
        rel = await conn.fetchrow(_RELATION, ref.schema, ref.name)
        if rel is None:
            raise TableNotFound(f"table {ref.qualified} does not exist or is not visible to this role")
        column_rows = await conn.fetch(_COLUMNS, rel["oid"])
        enum_oids = sorted({r["enum_oid"] for r in column_rows if r["enum_oid"] is not None})
        enum_rows = await conn.fetch(_ENUMS, enum_oids) if enum_oids else []
        constraint_rows = await conn.fetch(_CONSTRAINTS, rel["oid"])
        readable = await conn.fetchval("SELECT has_table_privilege($1::oid, 'SELECT')", rel["oid"])

    kind = _KINDS[rel["relkind"]]
    relation = qualified_name(ref.schema, ref.name)
    estimated = max(0, int(rel["reltuples"]))
    enums = {r["oid"]: EnumType(r["schema"], r["name"], list(r["labels"])) for r in enum_rows}
    primary_key: list[str] = []
    uniques: list[list[str]] = []
    foreign_keys: list[ForeignKey] = []
    fk_names: list[str] = []
    for con in constraint_rows:
        if con["type"] == "p":
            primary_key = list(con["columns"])
        elif con["type"] == "u":
            uniques.append(list(con["columns"]))
        else:
            fk_names.append(con["name"])
            foreign_keys.append(
                ForeignKey(
                    columns=list(con["columns"]),
                    ref_schema=con["ref_schema"],
                    ref_table=con["ref_table"],
                    ref_columns=list(con["ref_columns"]),
                )
            )

    warnings: list[str] = []
    if not readable:
        raise TableNotFound(f"table {ref.qualified} exists but this role may not SELECT from it")

    rows, exact = estimated, False
    try:
        rows, exact = await _count_rows(conn, relation, estimated, options)
    except asyncpg.PostgresError as exc:
        warnings.append(f"row count skipped: {describe_error(exc)}")
    source = _source(relation, kind, rows, options)
    samples: list[dict[str, Any]] = []
    try:
        samples = await _sample_rows(conn, source, options.sample_rows, list(column_rows))
    except asyncpg.PostgresError as exc:
        warnings.append(f"sample rows skipped: {describe_error(exc)}")

    unique_single = {cols[0] for cols in uniques if len(cols) == 1}
    candidates = [
        r["name"]
        for r in column_rows
        if r["enum_oid"] is None
        and (r["domain_base"] or r["data_type"]).split("(")[0] in _TEXT_TYPES
        and r["name"] not in primary_key
        and r["name"] not in unique_single
    ]
    enum_like: dict[str, list[Any]] = {}
    try:
        enum_like = await _enum_like_values(conn, source, candidates, options)
    except asyncpg.PostgresError as exc:
        warnings.append(f"enum detection skipped: {describe_error(exc)}")

    columns: list[ColumnInfo] = []
    details: dict[str, ColumnDetail] = {}
    for r in column_rows:
        name = r["name"]
        enum = enums.get(r["enum_oid"]) if r["enum_oid"] is not None else None
        sample_values = _distinct_values(samples, name, limit=5)
        columns.append(
            ColumnInfo(
                name=name,
                data_type=r["data_type"],
                nullable=not r["not_null"],
                default=None if r["generated"] == "s" else r["default_expr"],
                is_primary_key=name in primary_key,
                comment=r["comment"],
                sample_values=sample_values,
                enum_values=list(enum.labels) if enum and not r["enum_array"] else enum_like.get(name),
            )
        )
        details[name] = ColumnDetail(
            ddl_type=r["domain_base"] or r["data_type"],
            identity={"a": "ALWAYS", "d": "BY DEFAULT"}.get(r["identity"]),
            generated=r["default_expr"] if r["generated"] == "s" else None,
            domain=r["data_type"] if r["domain_base"] else None,
        )

    info = TableInfo(
        schema_name=ref.schema,
        name=ref.name,
        comment=rel["comment"],
        columns=columns,
        primary_key=primary_key,
        foreign_keys=foreign_keys,
        estimated_rows=rows,
        sample_rows=samples,
    )
    return IntrospectedTable(
        ref=ref,
        info=info,
        kind=kind,
        columns=details,
        enum_types=[enums[oid] for oid in enum_oids if oid in enums],
        unique_constraints=uniques,
        foreign_key_names=fk_names,
        row_count_exact=exact,
        warnings=warnings,
    )


def _distinct_values(rows: list[dict[str, Any]], column: str, *, limit: int) -> list[Any]:
    values: list[Any] = []
    seen: set[str] = set()
    for row in rows:
        value = row.get(column)
        key = json.dumps(value, sort_keys=True, default=str)
        if value is None or key in seen:
            continue
        seen.add(key)
        values.append(value)
        if len(values) >= limit:
            break
    return values
