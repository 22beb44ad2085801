"""The training-data store: DDL, documentation chunks and question/SQL pairs with their embeddings, in
PostgreSQL, for a Text2SQL assistant to retrieve from.

Rows are unique per (kind, content_hash), so loading is idempotent and the same DDL loaded by two tasks is
stored once (`source_task_id` keeps the first loader). `training_data_sources` links each row to every
task whose current files contain it: a load links all of the task's current items and unlinks the rows
it no longer has (a pair repaired or removed by a re-run of step 3, a DDL changed by a re-run of step 1),
deleting a row only when no task links it any more. Rows without any link (loaded before the link table
existed, or by other tools) are never deleted. Embeddings are stored unit-length as `real[]`, so no
extension is needed and cosine similarity is a dot product computed in SQL; search scans at most
`scan_limit` recent rows per kind, which keeps its cost bounded (a vector index such as pgvector is the
next step for stores far larger than that).

This module holds the schema and the writes; reading (search, stats) is in shared/training_search.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.business_db import quote_ident

KINDS = ("ddl", "documentation", "question_sql")
TABLE = "training_data"
LOADS_TABLE = "training_loads"
SOURCES_TABLE = "training_data_sources"
INSERT_BATCH = 200
DEFAULT_SCAN_LIMIT = 20_000


@dataclass(frozen=True)
class TrainingItem:
    kind: str
    content: str  # the text that is embedded and shown
    question: str | None = None
    sql: str | None = None
    table_name: str | None = None
    source_file: str | None = None

    @property
    def content_hash(self) -> str:
        text = f"{self.question}\x00{self.sql}" if self.kind == "question_sql" else self.content
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ddl(schema: str) -> str:
    s = quote_ident(schema)
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.{TABLE} (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('ddl', 'documentation', 'question_sql')),
    content         text NOT NULL,
    question        text,
    sql             text,
    table_name      text,
    source_task_id  text,
    source_file     text,
    content_hash    text NOT NULL,
    embedding       real[] NOT NULL,
    dimensions      integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, content_hash)
);
CREATE INDEX IF NOT EXISTS {TABLE}_task_idx ON {s}.{TABLE} (source_task_id);
CREATE INDEX IF NOT EXISTS {TABLE}_kind_dims_idx ON {s}.{TABLE} (kind, dimensions, id);
CREATE TABLE IF NOT EXISTS {s}.{LOADS_TABLE} (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id         text NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    inserted        jsonb NOT NULL,
    already_present jsonb NOT NULL,
    backup_table    text
);
ALTER TABLE {s}.{LOADS_TABLE} ADD COLUMN IF NOT EXISTS removed jsonb;
CREATE TABLE IF NOT EXISTS {s}.{SOURCES_TABLE} (
    data_id         bigint NOT NULL REFERENCES {s}.{TABLE} (id) ON DELETE CASCADE,
    task_id         text NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (data_id, task_id)
);
CREATE INDEX IF NOT EXISTS {SOURCES_TABLE}_task_idx ON {s}.{SOURCES_TABLE} (task_id);
ALTER TABLE {s}.{SOURCES_TABLE} ADD COLUMN IF NOT EXISTS db_name text;
CREATE INDEX IF NOT EXISTS {SOURCES_TABLE}_db_idx ON {s}.{SOURCES_TABLE} (db_name);
"""


async def ensure_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Create the store, or add what an older store lacks; concurrent runners serialise on its lock."""
    async with conn.transaction():
        await lock(conn, schema)
        await conn.execute(_ddl(schema))


async def lock(conn: asyncpg.Connection, schema: str) -> None:
    """Take the store's advisory lock until the current transaction ends.

    A load writes rows, links and prunes while holding it, so loads of one store are serialised: a load
    that prunes a row can never race one that is linking it (without the lock, the pruning load would not
    see the other's uncommitted link, and its delete would cascade that link away once it committed).
    Searches and stats do not take it; they see the store before or after a load, never half of one.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"dp_training_store:{schema}")


def unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else [float(v) for v in vector]


async def existing_hashes(
    conn: asyncpg.Connection, schema: str, items: Iterable[TrainingItem]
) -> set[tuple[str, str]]:
    """(kind, content_hash) of the items that are already stored."""
    pairs = {(i.kind, i.content_hash) for i in items}
    if not pairs:
        return set()
    rows = await conn.fetch(
        f"SELECT kind, content_hash FROM {quote_ident(schema)}.{TABLE} "
        "WHERE (kind, content_hash) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [k for k, _ in pairs],
        [h for _, h in pairs],
    )
    return {(r["kind"], r["content_hash"]) for r in rows}


async def insert_items(
    conn: asyncpg.Connection,
    schema: str,
    items: Sequence[TrainingItem],
    embeddings: Sequence[Sequence[float]],
    task_id: str,
) -> dict[str, int]:
    """Insert what is not there yet; returns how many rows were added per kind."""
    inserted = dict.fromkeys(KINDS, 0)
    sql = f"""
        INSERT INTO {quote_ident(schema)}.{TABLE}
            (kind, content, question, sql, table_name, source_task_id, source_file, content_hash,
             embedding, dimensions)
        SELECT x.kind, x.content, x.question, x.sql, x.table_name, $2, x.source_file, x.content_hash,
               ARRAY(SELECT jsonb_array_elements_text(x.embedding)::real), jsonb_array_length(x.embedding)
        FROM jsonb_to_recordset($1::jsonb) AS x(kind text, content text, question text, sql text,
             table_name text, source_file text, content_hash text, embedding jsonb)
        ON CONFLICT (kind, content_hash) DO NOTHING
        RETURNING kind
    """
    for start in range(0, len(items), INSERT_BATCH):
        batch = [
            {
                "kind": item.kind,
                "content": item.content,
                "question": item.question,
                "sql": item.sql,
                "table_name": item.table_name,
                "source_file": item.source_file,
                "content_hash": item.content_hash,
                "embedding": unit(vector),
            }
            for item, vector in zip(
                items[start : start + INSERT_BATCH], embeddings[start : start + INSERT_BATCH], strict=True
            )
        ]
        for row in await conn.fetch(sql, json.dumps(batch), task_id):
            inserted[row["kind"]] += 1
    return inserted


async def sync_links(
    conn: asyncpg.Connection,
    schema: str,
    task_id: str,
    items: Iterable[TrainingItem],
    db_name: str | None = None,
) -> dict[str, dict[str, int]]:
    """Make `items` exactly the rows linked to `task_id`, deleting rows nobody links any more.

    Every item must already be stored. Call inside the transaction that holds `lock`, so no other load
    links or prunes meanwhile. Returns per kind how many rows were `unlinked` from the task and how many
    of those were `deleted` (the others are still linked by other tasks). Rows that never had a link are
    not touched. `db_name`: the business database the task's items describe, noted on its links
    (`database_rows`, `remove_database_rows`).
    """
    s = quote_ident(schema)
    keys = {(i.kind, i.content_hash) for i in items}
    ids = [
        r["id"]
        for r in await conn.fetch(
            f"SELECT d.id FROM {s}.{TABLE} AS d "
            "JOIN unnest($1::text[], $2::text[]) AS c(kind, content_hash) "
            "ON d.kind = c.kind AND d.content_hash = c.content_hash",
            [k for k, _ in keys],
            [h for _, h in keys],
        )
    ]
    if len(ids) != len(keys):
        raise ValueError(f"{len(keys) - len(ids)} of the task's items are not stored; insert them first")
    await conn.execute(
        f"INSERT INTO {s}.{SOURCES_TABLE} AS l (data_id, task_id, db_name) SELECT unnest($1::bigint[]), $2, $3 "
        "ON CONFLICT (data_id, task_id) DO UPDATE SET db_name = coalesce(EXCLUDED.db_name, l.db_name) "
        "WHERE l.db_name IS DISTINCT FROM coalesce(EXCLUDED.db_name, l.db_name)",
        ids,
        task_id,
        db_name,
    )
    unlinked = await conn.fetch(
        f"DELETE FROM {s}.{SOURCES_TABLE} AS l USING {s}.{TABLE} AS d "
        "WHERE l.task_id = $1 AND l.data_id = d.id AND l.data_id <> ALL($2::bigint[]) "
        "RETURNING d.id, d.kind",
        task_id,
        ids,
    )
    # A separate statement, so that it sees the links the one above removed as gone.
    deleted = await conn.fetch(
        f"DELETE FROM {s}.{TABLE} AS d WHERE d.id = ANY($1::bigint[]) "
        f"AND NOT EXISTS (SELECT 1 FROM {s}.{SOURCES_TABLE} AS l WHERE l.data_id = d.id) RETURNING d.kind",
        [r["id"] for r in unlinked],
    )
    return {"unlinked": _count_kinds(unlinked), "deleted": _count_kinds(deleted)}


async def database_rows(conn: asyncpg.Connection, schema: str, db_name: str) -> list[dict[str, Any]]:
    """The stored rows some task of the business database `db_name` loaded (linked with its name)."""
    s = quote_ident(schema)
    rows = await conn.fetch(
        f"SELECT d.id, d.kind, d.content, d.question, d.sql, d.table_name, d.source_task_id, d.source_file, "
        f"d.content_hash, d.dimensions, d.embedding, d.created_at FROM {s}.{TABLE} AS d "
        f"WHERE EXISTS (SELECT 1 FROM {s}.{SOURCES_TABLE} AS l WHERE l.data_id = d.id AND l.db_name = $1) "
        "ORDER BY d.id",
        db_name,
    )
    return [dict(r) for r in rows]


async def remove_database_rows(
    conn: asyncpg.Connection, schema: str, db_name: str
) -> dict[str, dict[str, int]]:
    """Unlink every row from the tasks of `db_name` and delete the rows no other link keeps (a row that
    another database's task loaded too stays for that one). Call inside the transaction holding `lock`."""
    s = quote_ident(schema)
    unlinked = await conn.fetch(
        f"WITH gone AS (DELETE FROM {s}.{SOURCES_TABLE} WHERE db_name = $1 RETURNING data_id) "
        f"SELECT d.id, d.kind FROM {s}.{TABLE} AS d WHERE d.id IN (SELECT data_id FROM gone)",
        db_name,
    )
    deleted = await conn.fetch(
        f"DELETE FROM {s}.{TABLE} AS d WHERE d.id = ANY($1::bigint[]) "
        f"AND NOT EXISTS (SELECT 1 FROM {s}.{SOURCES_TABLE} AS l WHERE l.data_id = d.id) RETURNING d.kind",
        [r["id"] for r in unlinked],
    )
    return {"unlinked": _count_kinds(unlinked), "deleted": _count_kinds(deleted)}


def _count_kinds(rows: Iterable[asyncpg.Record]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for row in rows:
        counts[row["kind"]] += 1
    return counts


async def backup(conn: asyncpg.Connection, schema: str, now: dt.datetime) -> str | None:
    """Snapshot the store as `training_data_backup_<timestamp>` (None when it is empty)."""
    s = quote_ident(schema)
    if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {s}.{TABLE})"):
        return None
    name = f"{TABLE}_backup_{now:%Y%m%d_%H%M%S}"
    await conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.{quote_ident(name)} AS TABLE {s}.{TABLE}")
    return name


async def record_load(
    conn: asyncpg.Connection,
    schema: str,
    task_id: str,
    inserted: dict[str, int],
    already_present: dict[str, int],
    backup_table: str | None,
    removed: dict[str, dict[str, int]] | None = None,
) -> None:
    await conn.execute(
        f"INSERT INTO {quote_ident(schema)}.{LOADS_TABLE} "
        "(task_id, inserted, already_present, backup_table, removed) VALUES ($1, $2::jsonb, $3::jsonb, $4, $5::jsonb)",
        task_id,
        json.dumps(inserted),
        json.dumps(already_present),
        backup_table,
        None if removed is None else json.dumps(removed),
    )
