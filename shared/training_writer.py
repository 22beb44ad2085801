"""Writing the training-data store (shared/training_store.py): inserting items, linking them to the
tasks that load them, pruning what no task links any more, backups and the load record.

Writes that link or prune run inside the transaction that holds `training_store.lock`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from shared.business_db import quote_ident
from shared.training_store import KINDS, LOADS_TABLE, SOURCES_TABLE, TABLE, TrainingItem, unit

INSERT_BATCH = 200


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
    return await _prune(conn, s, unlinked)


async def supersede(
    conn: asyncpg.Connection,
    schema: str,
    earlier_tasks: Sequence[str],
    items: Iterable[TrainingItem],
) -> dict[str, dict[str, int]]:
    """An incremental run's load: unlink the rows the earlier tasks of its lineage loaded that are not
    among its `items` (dropped tables, old versions of changed ones, pairs not carried over) and delete
    those no other task links. Call after `sync_links`, inside the transaction holding `lock`."""
    s = quote_ident(schema)
    keys = {(i.kind, i.content_hash) for i in items}
    if not earlier_tasks:
        return {"unlinked": dict.fromkeys(KINDS, 0), "deleted": dict.fromkeys(KINDS, 0)}
    unlinked = await conn.fetch(
        f"WITH gone AS (DELETE FROM {s}.{SOURCES_TABLE} AS l USING {s}.{TABLE} AS d "
        "WHERE l.task_id = ANY($1::text[]) AND l.data_id = d.id AND (d.kind, d.content_hash) NOT IN "
        "(SELECT * FROM unnest($2::text[], $3::text[])) RETURNING d.id, d.kind) "
        "SELECT DISTINCT ON (id) id, kind FROM gone",
        list(earlier_tasks),
        [k for k, _ in keys],
        [h for _, h in keys],
    )
    return await _prune(conn, s, unlinked)


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
    return await _prune(conn, s, unlinked)


async def _prune(
    conn: asyncpg.Connection, s: str, unlinked: list[asyncpg.Record]
) -> dict[str, dict[str, int]]:
    """Delete the `unlinked` rows (id, kind) that no task links any more; per kind, how many rows were
    unlinked and how many of those deleted. A separate statement from the unlinking, so that it sees the
    links removed there as gone."""
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
