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

This module holds what the store is (its kinds, tables, items, lock and migrations); the writes are in
shared/training_writer.py, ranked search in shared/training_search.py, statistics in
shared/training_stats.py. The tables are created by the migrations in shared/migrations/training.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shared.business_db import quote_ident
from shared.migration_files import apply_pending, training_migrations

KINDS = ("ddl", "documentation", "question_sql")
TABLE = "training_data"
LOADS_TABLE = "training_loads"
SOURCES_TABLE = "training_data_sources"
MIGRATIONS_TABLE = "training_migrations"
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


async def ensure_schema(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Apply the store's migrations (shared/migrations/training) that `schema` lacks; returns their names.

    Creates the schema when missing. Applied versions are recorded in the schema's own
    `training_migrations` table, so the store can share a schema or a database with the pipeline.
    Concurrent callers serialise on the store's lock.
    """
    async with conn.transaction():
        await lock(conn, schema)
        return await apply_pending(conn, training_migrations(), quote_ident(schema), MIGRATIONS_TABLE)


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
