"""Statistics of the training-data store (shared/training_store.py): rows by kind and by source task,
and the last load."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.business_db import quote_ident
from shared.training_store import KINDS, LOADS_TABLE, TABLE


async def stats(conn: asyncpg.Connection, schema: str) -> dict[str, Any]:
    """Rows per kind, per source task, and the last load; zeros when the store does not exist yet."""
    s = quote_ident(schema)
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{s}.{TABLE}")
    by_kind = dict.fromkeys(KINDS, 0)
    if not exists:
        return {"total": 0, "by_kind": by_kind, "by_task": [], "last_load": None, "last_row_at": None}
    for row in await conn.fetch(f"SELECT kind, count(*) AS n FROM {s}.{TABLE} GROUP BY kind"):
        by_kind[row["kind"]] = row["n"]
    by_task: dict[str, dict[str, Any]] = {}
    task_rows = await conn.fetch(
        f"""SELECT source_task_id, kind, count(*) AS n, max(created_at) AS last_at FROM {s}.{TABLE}
            GROUP BY source_task_id, kind ORDER BY max(created_at) DESC LIMIT 300"""
    )
    for row in task_rows:
        entry = by_task.setdefault(
            row["source_task_id"] or "", {"task_id": row["source_task_id"], **dict.fromkeys(KINDS, 0)}
        )
        entry[row["kind"]] = row["n"]
    # `*`: a store created before `removed` existed lacks the column until its next load.
    last = await conn.fetchrow(f"SELECT * FROM {s}.{LOADS_TABLE} ORDER BY id DESC LIMIT 1")
    last_row_at = await conn.fetchval(f"SELECT max(created_at) FROM {s}.{TABLE}")
    return {
        "total": sum(by_kind.values()),
        "by_kind": by_kind,
        "by_task": list(by_task.values())[:100],
        "last_load": None
        if last is None
        else {
            "task_id": last["task_id"],
            "loaded_at": last["loaded_at"].isoformat(),
            "inserted": _json(last["inserted"]),
            "already_present": _json(last["already_present"]),
            "backup_table": last["backup_table"],
            "removed": _json(last.get("removed")),
        },
        "last_row_at": last_row_at.isoformat() if last_row_at else None,
    }


def _json(value: Any) -> Any:
    """JSONB comes back decoded on pools with a JSON codec (the services') and as text on plain connections."""
    return json.loads(value) if isinstance(value, str | bytes) else value
