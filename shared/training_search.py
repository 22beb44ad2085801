"""Ranked search of the training-data store (shared/training_store.py).

`search` ranks the rows of each kind by cosine similarity to a unit-length query embedding, computed in
SQL over at most `scan_limit` recent rows per kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from shared.business_db import quote_ident
from shared.training_store import DEFAULT_SCAN_LIMIT, KINDS, TABLE, unit


async def search(
    conn: asyncpg.Connection,
    schema: str,
    embedding: list[float],
    limit: int,
    kinds: Iterable[str] | None = None,
    *,
    scan_limit: int = DEFAULT_SCAN_LIMIT,
) -> dict[str, list[dict[str, Any]]]:
    """The `limit` stored rows nearest to `embedding` (cosine similarity), per kind, best first.

    Only rows embedded with the same number of dimensions are compared; at most `scan_limit` of the most
    recent rows of each kind are scanned.
    """
    wanted = list(kinds) if kinds else list(KINDS)
    unknown = set(wanted) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds: {', '.join(sorted(unknown))}")
    limit = max(1, min(int(limit), 100))
    query = unit(embedding)
    sql = f"""
        SELECT t.id, t.kind, t.content, t.question, t.sql, t.table_name, t.source_task_id, t.source_file,
               t.created_at,
               (SELECT sum(a * b) FROM unnest(t.embedding, $1::real[]) AS u(a, b)) AS score
        FROM (SELECT * FROM {quote_ident(schema)}.{TABLE}
              WHERE kind = $2 AND dimensions = $3 ORDER BY id DESC LIMIT $4) AS t
        ORDER BY score DESC, t.id
        LIMIT $5
    """
    result: dict[str, list[dict[str, Any]]] = {}
    for kind in wanted:
        rows = await conn.fetch(sql, query, kind, len(query), scan_limit, limit)
        result[kind] = [
            {
                **dict(r),
                "score": round(float(r["score"] or 0.0), 6),
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]
    return result
