"""Building blocks of keyset pages whose cost does not grow with the table (issue 11, goal 3).

- `count_capped`: a total counted up to a cap (exact below it).
- `ordered_branches`: a page over several values of a column, one index range per value, merged.
- `text_page`: a page of rows matching a text (ILIKE), robust to where the matches are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

# A connection from the pool (asyncpg's proxy behaves as a Connection), or the pool itself.
Connection: TypeAlias = asyncpg.Connection
Queryable: TypeAlias = asyncpg.Pool | asyncpg.Connection

# How many rows next to the cursor a text search reads in page order before it asks the trigram index
# for the matches further away (see text_page).
TEXT_WINDOW = 2_000
# How many rows next to the start a text search's count reads before it asks the indexes (count_text).
COUNT_WINDOW = 5_000


class Where:
    """Builds a WHERE clause with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        numbers = [f"${len(self.args) + i + 1}" for i in range(len(values))]
        self.clauses.append(template.format(*numbers))
        self.args.extend(values)

    def sql(self, *extra: str) -> str:
        clauses = [*self.clauses, *extra]
        return (" WHERE " + " AND ".join(clauses)) if clauses else ""

    def copy(self) -> Where:
        other = Where()
        other.clauses, other.args = list(self.clauses), list(self.args)
        return other


async def custom_plans(conn: Connection) -> None:
    """Plan this transaction's statements for their actual values. The best plan for a text search
    depends on the text (a rare word: the trigram index; a common one: the page order), and a cached
    generic plan would use one of them for every text."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def count_capped(db: Queryable, from_where: str, args: Sequence[Any], cap: int) -> tuple[int, bool]:
    """(rows matching, exact): counting stops after `cap` matches, so its cost is bounded whatever the
    table holds; past the cap the count is `cap` and not exact. `from_where`: `FROM ... WHERE ...`."""
    found = int(
        await db.fetchval(
            f"SELECT count(*) FROM (SELECT 1 {from_where} LIMIT ${len(args) + 1}) capped", *args, cap + 1
        )
    )
    return min(found, cap), found <= cap


async def count_text(
    conn: Connection, *, table: str, columns: str, order: str, scope: Where, matching: Sequence[str], cap: int
) -> tuple[int, bool]:
    """count_capped for a text search in `scope` (its first condition and arguments; `matching`: the
    other conditions, numbered after it). The first COUNT_WINDOW rows of the scope in `order` are
    counted directly: a small scope is counted exactly and a common text reaches the cap there, without
    the trigram index, whose cost grows with the matches in the whole table. Only a rarer text in a
    larger scope is counted by the indexes. `columns`: those the conditions read."""
    window = f"SELECT {columns} FROM {table}{scope.sql()} ORDER BY {order} LIMIT {COUNT_WINDOW}"
    row = await conn.fetchrow(
        f"SELECT count(*) AS seen, count(*) FILTER (WHERE {' AND '.join(matching) or 'true'}) AS found"
        f" FROM ({window}) w",
        *scope.args,
    )
    seen, found = int(row["seen"]), int(row["found"])
    if seen < COUNT_WINDOW or found > cap:
        return min(found, cap), found <= cap
    return await count_capped(conn, f"FROM {table}{scope.sql(*matching)}", scope.args, cap)


def ordered_branches(select: str, where: Where, branches: Sequence[str], order: str, limit_arg: str) -> str:
    """One keyset page over several values of a column (`branches`: SQL conditions, one per value):
    each branch reads its own index range in page order, and the outer ORDER BY merges them. A plain
    `IN (...)` or `>=` would walk the page order and filter, which is slow when the value is rare or
    its rows lie far from the cursor."""
    parts = [f"({select}{where.sql(branch)} ORDER BY {order} LIMIT {limit_arg})" for branch in branches]
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) branches ORDER BY {order} LIMIT {limit_arg}"


async def text_page(
    conn: Connection,
    *,
    table: str,
    columns: str,
    keys: Sequence[str],
    descending: bool,
    scope: Where,
    matching: Where,
    limit: int,
) -> list[asyncpg.Record]:
    """The first `limit` rows of `matching` in key order, for a `matching` with a text condition.

    Neither plan the database could pick alone is safe: walking the page order is fast when matches
    are dense near the cursor and reads everything when they are far away; the trigram index is fast
    for a rare text and reads every match of a common one. So: the TEXT_WINDOW rows of `scope` (the
    page's range: task and cursor, without the other filters) next to the cursor are searched in page
    order; only when they hold fewer than `limit` matches are the matches beyond them collected as a
    set (the trigram index and the filters' indexes, whichever is cheaper) and the page's rest sorted
    from it. `keys`: the unique key the page is ordered by; `id` must be the table's primary key.
    """
    direction = "DESC" if descending else "ASC"
    order = ", ".join(f"{k} {direction}" for k in keys)
    key_list = ", ".join(keys)
    edge = await conn.fetchrow(
        f"SELECT {key_list} FROM {table}{scope.sql()} ORDER BY {order} OFFSET {TEXT_WINDOW} LIMIT 1",
        *scope.args,
    )
    if edge is None:  # the whole range is within the window
        return list(
            await conn.fetch(
                f"SELECT {columns} FROM {table}{matching.sql()} ORDER BY {order} LIMIT {int(limit)}",
                *matching.args,
            )
        )
    marks = ", ".join("{}" for _ in keys)
    inside = matching.copy()
    inside.add(f"({key_list}) {'>' if descending else '<'} ({marks})", *edge.values())
    near = list(
        await conn.fetch(
            f"SELECT {columns} FROM {table}{inside.sql()} ORDER BY {order} LIMIT {int(limit)}", *inside.args
        )
    )
    if len(near) >= limit:
        return near
    beyond = matching.copy()
    beyond.add(f"({key_list}) {'<=' if descending else '>='} ({marks})", *edge.values())
    far = await set_page(
        conn,
        table=table,
        columns=columns,
        keys=keys,
        descending=descending,
        matching=beyond,
        limit=limit - len(near),
    )
    return near + far


async def set_page(
    conn: Connection,
    *,
    table: str,
    columns: str,
    keys: Sequence[str],
    descending: bool,
    matching: Where,
    limit: int,
) -> list[asyncpg.Record]:
    """The first `limit` rows of `matching` in key order, read as a set: the matches' keys (whichever
    indexes find them), the first ones in order, then only those rows in full. For a set known to be
    small, or the part of a text search beyond text_page's window."""
    direction = "DESC" if descending else "ASC"
    order = ", ".join(f"{k} {direction}" for k in keys)
    rows = await conn.fetch(
        f"WITH found AS MATERIALIZED (SELECT {', '.join(keys)} FROM {table}{matching.sql()})"
        f" SELECT {columns} FROM (SELECT id AS found_id FROM found ORDER BY {order}"
        f" LIMIT {int(limit)}) top JOIN {table} ON id = found_id ORDER BY {order}",
        *matching.args,
    )
    return list(rows)
