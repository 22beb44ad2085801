"""The event store (`data_pipeline_events`): the one adapter every service reads and writes it through.

Writers: the log collector stores every event once (`admit` then `write_events` for a batch; `append`
for one), purges a deleted task's events behind a tombstone, drops an old task's log text (log
retention) and compacts heartbeats and progress (shared/event_compaction.py). Readers: the collector's projector and
rebuild (`replay`, `task_events`), the scheduler (`EventStore`: open tasks, a task's events, finished
tasks for retention) and the gateway's event history (`event_page`, `has_events`).

Every stored event is decoded by `decode`, the one decoder: it reads the row's `version` (rows stored
before versions existed are version 1), runs the upcasters from that version to the event type's
current one, then validates with the catalog's TypeAdapter. Events are `extra="forbid"`, so a field
that is renamed or removed one day needs an upcaster: bump the type in `EVENT_VERSIONS` and register
`UPCASTERS[(type, old_version)]`, a pure function from the old payload dict to the next version's.
tests/fixtures/stored_events_v1.jsonl holds one stored event of every type as written in version 1;
tests/unit/test_event_store_decode.py keeps decoding it.

Broker messages always carry the current shapes (producer and collector run one release); versions
and upcasters apply to what is stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared import bulk_insert
from shared.copy_text import line
from shared.events import EVENT_TYPES
from shared.lifecycle import Finished
from shared.messages import EVENT_ADAPTER, EventEnvelope

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

EVENT_VERSIONS: dict[str, int] = dict.fromkeys(EVENT_TYPES, 1)
"""The current payload version of each event type; `append` stores it with the event."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(type, from_version) -> the function turning that version's payload into version from_version + 1."""

_ENVELOPE_COLUMNS = ("event_id", "type", "task_id", "occurred_at", "producer")
_SELECT = (
    "SELECT seq, event_id, type, task_id, occurred_at, producer, payload, version FROM data_pipeline_events"
)


class UndecodableEvent(ValueError):
    """A stored event whose version this release cannot bring to the current shape."""


def upcast(event_type: str, version: int | None, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload of a stored `event_type` event of `version` (None: 1) in the type's current shape."""
    current = EVENT_VERSIONS.get(event_type, 1)
    at = version or 1
    if at > current:
        raise UndecodableEvent(
            f"{event_type} v{at} was stored by a newer release (this one reads v{current})"
        )
    while at < current:
        step = UPCASTERS.get((event_type, at))
        if step is None:
            raise UndecodableEvent(f"no upcaster for {event_type} v{at} -> v{at + 1}")
        payload = step(payload)
        at += 1
    return payload


def _payload(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row["payload"]
    data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return dict(data or {})


def _version(row: Mapping[str, Any]) -> int | None:
    return row["version"] if "version" in row.keys() else None  # asyncpg.Record: keys(), no `in`


def decode(row: Mapping[str, Any]) -> EventEnvelope:
    """The one decoder of stored events: a row (asyncpg record or dict; payload as JSON text or parsed,
    `version` optional) -> an EventEnvelope of the current catalog. Raises pydantic.ValidationError or
    UndecodableEvent."""
    payload = upcast(row["type"], _version(row), _payload(row))
    return EVENT_ADAPTER.validate_python({**{k: row[k] for k in _ENVELOPE_COLUMNS}, "payload": payload})


# ---- writes (the log collector) -----------------------------------------------------------------


async def append(conn: asyncpg.Connection, env: EventEnvelope) -> int | None:
    """Store the event; returns its sequence number, or None when it was stored before (a redelivery)
    or its task was deleted (a runner's last heartbeat or log line arriving after the purge)."""
    return await conn.fetchval(
        """
        INSERT INTO data_pipeline_events (event_id, type, task_id, occurred_at, producer, payload, version)
        SELECT $1::uuid, $2::varchar, $3::varchar, $4::timestamptz, $5::varchar, $6::jsonb, $7::smallint
        WHERE NOT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = $3::varchar)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING seq
        """,
        env.event_id,
        env.type,
        env.task_id,
        env.occurred_at,
        env.producer,
        env.payload.model_dump(mode="json"),
        EVENT_VERSIONS[env.type],
    )


async def admit(
    conn: asyncpg.Connection, envelopes: Sequence[EventEnvelope]
) -> list[tuple[int, EventEnvelope]]:
    """The events of a batch to store, each with the sequence number reserved for it, in batch order:
    the batch minus events stored before (a redelivery: the store's unique event_id decides) and events of
    deleted tasks. One round trip; `write_events` then stores them. A seq reserved for an event left out
    stays unused (the store has gaps anyway: purges)."""
    if not envelopes:
        return []
    row = await conn.fetchrow(
        """
        SELECT ARRAY(SELECT event_id FROM data_pipeline_events WHERE event_id = ANY($1::uuid[])) AS known,
               ARRAY(SELECT task_id FROM task_tombstones WHERE task_id = ANY($2::varchar[])) AS tombstoned,
               ARRAY(SELECT nextval('data_pipeline_events_seq_seq') FROM generate_series(1, $3)) AS seqs
        """,
        [e.event_id for e in envelopes],
        list({e.task_id for e in envelopes}),
        len(envelopes),
    )
    known, tombstoned = set(row["known"]), set(row["tombstoned"])
    fresh = [e for e in envelopes if e.event_id not in known and e.task_id not in tombstoned]
    return list(zip(sorted(row["seqs"]), fresh, strict=False))


_EVENT_COLUMNS = (
    ("seq", "bigint"), ("event_id", "uuid"), ("type", "varchar"), ("task_id", "varchar"),
    ("occurred_at", "timestamptz"), ("producer", "varchar"), ("payload", "jsonb"), ("version", "smallint"),
)  # fmt: skip


def _values(e: EventEnvelope) -> tuple[Any, ...]:
    """An event's columns after `seq`."""
    return (
        e.event_id,
        e.type,
        e.task_id,
        e.occurred_at,
        e.producer,
        e.payload.model_dump_json(),
        EVENT_VERSIONS[e.type],
    )


def event_line(e: EventEnvelope) -> str:
    """An event's COPY text line without its seq (reserved later, by `admit`): the part of `write_events`'
    work a caller can do before it takes its turn to store."""
    return line(_values(e))


async def write_events(
    conn: asyncpg.Connection,
    admitted: Sequence[tuple[int, EventEnvelope]],
    lines: Mapping[uuid.UUID, str] | None = None,
) -> None:
    """Store admitted events in one statement (shared/bulk_insert.py: a COPY, or an INSERT for a few).
    `lines`: `event_line` of some of them made beforehand, by event id; the rest are made here."""
    if not admitted:
        return
    if not bulk_insert.by_copy(len(admitted)):
        rows = [(seq, *_values(e)) for seq, e in admitted]
        await bulk_insert.insert(conn, "data_pipeline_events", _EVENT_COLUMNS, rows)
        return
    made = lines or {}
    text = "".join(f"{seq}\t{made.get(e.event_id) or event_line(e)}" for seq, e in admitted)
    await bulk_insert.copy(conn, "data_pipeline_events", _EVENT_COLUMNS, text.encode())


async def purge_task(conn: asyncpg.Connection, env: EventEnvelope, seq: int) -> None:
    """Replace a deleted task's events and rows by a tombstone holding ids and counts only.

    The event history of a deleted task held its (encrypted) connection secret, its log text and its
    parameters; nothing of it may outlive the delete. The tombstone keeps late events out of the store
    (see `append`), and neither the scheduler's rebuild nor the collector's replay can find the task again.
    """
    counts = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM data_pipeline_events WHERE task_id = $1) AS events,
               (SELECT count(*) FROM data_pipeline_task_executions WHERE task_id = $1) AS executions,
               (SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1) AS logs,
               (SELECT count(*) FROM data_pipeline_task_outputs WHERE task_id = $1) AS outputs
        """,
        env.task_id,
    )
    await conn.execute(
        """
        INSERT INTO task_tombstones (task_id, deleted_at, deleted_seq, event_count, execution_count,
            log_count, output_count)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (task_id) DO NOTHING
        """,
        env.task_id,
        env.occurred_at,
        seq,
        counts["events"],
        counts["executions"],
        counts["logs"],
        counts["outputs"],
    )
    await conn.execute("DELETE FROM data_pipeline_tasks WHERE id = $1", env.task_id)  # rows cascade
    await conn.execute("DELETE FROM data_pipeline_events WHERE task_id = $1", env.task_id)


async def purge_logs(conn: asyncpg.Connection, task_id: str, seq: int) -> None:
    """Log retention for one task: its log rows and the `log_emitted` events stored before `seq` go
    (the store keeps the task's other events, so the task record survives a rebuild)."""
    await conn.execute("DELETE FROM data_pipeline_task_logs WHERE task_id = $1 AND id < $2", task_id, seq)
    await conn.execute(
        "DELETE FROM data_pipeline_events WHERE task_id = $1 AND type = 'log_emitted' AND seq < $2",
        task_id,
        seq,
    )


# ---- reads ----------------------------------------------------------------------------------------


async def replay(conn: asyncpg.Connection, batch: int = 1000) -> AsyncIterator[tuple[int, EventEnvelope]]:
    """Every stored event, decoded, with its sequence number, in store order (rebuild)."""
    last = 0
    while True:
        rows = await conn.fetch(f"{_SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2", last, batch)
        if not rows:
            return
        for row in rows:
            last = row["seq"]
            yield row["seq"], decode(row)


async def task_events(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    *,
    through_seq: int | None = None,
    types: Sequence[str] | None = None,
) -> list[EventEnvelope]:
    """A task's events in store order; only those stored up to and including `through_seq` (what was
    known when that event happened, on the live path and in a rebuild alike) and of `types`, if given."""
    where = ["task_id = $1"]
    args: list[Any] = [task_id]
    if through_seq is not None:
        args.append(through_seq)
        where.append(f"seq <= ${len(args)}")
    if types is not None:
        args.append(list(types))
        where.append(f"type = ANY(${len(args)}::text[])")
    rows = await conn.fetch(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY seq", *args)
    return [decode(r) for r in rows]


async def tasks_events(
    conn: asyncpg.Connection, task_ids: Sequence[str], types: Sequence[str]
) -> list[tuple[int, EventEnvelope]]:
    """The events of `types` of several tasks with their sequence numbers, in store order."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE task_id = ANY($1::varchar[]) AND type = ANY($2::text[]) ORDER BY seq",
        list(task_ids),
        list(types),
    )
    return [(r["seq"], decode(r)) for r in rows]


_OPEN_TASKS = """
WITH t AS (
    SELECT task_id,
           max(seq) FILTER (WHERE type = 'task_finished') AS finished,
           max(seq) FILTER (WHERE type IN ('task_created', 'task_rerun_requested')) AS started,
           bool_or(type = 'task_deleted') AS deleted,
           bool_or(type = 'task_cancel_requested' AND (payload->>'delete_after')::boolean) AS delete_requested
    FROM data_pipeline_events
    GROUP BY task_id
)
SELECT task_id FROM t
WHERE NOT deleted AND (finished IS NULL OR started > finished OR delete_requested)
  AND NOT EXISTS (SELECT 1 FROM task_tombstones d WHERE d.task_id = t.task_id)
"""

# Finished tasks (last finish after the last create/re-run) with what retention did since that finish.
_FINISHED_TASKS = """
WITH t AS (
    SELECT task_id,
           max(seq) FILTER (WHERE type = 'task_finished') AS finished,
           max(occurred_at) FILTER (WHERE type = 'task_finished') AS finished_at,
           max(seq) FILTER (WHERE type IN ('task_created', 'task_rerun_requested')) AS started,
           max(seq) FILTER (WHERE type = 'task_logs_purged') AS logs_purged,
           max(seq) FILTER (WHERE type = 'task_files_cleaned') AS files_cleaned,
           bool_or(type = 'task_deleted') AS deleted
    FROM data_pipeline_events
    WHERE type IN ('task_created', 'task_rerun_requested', 'task_finished', 'task_logs_purged',
                   'task_files_cleaned', 'task_deleted')
    GROUP BY task_id
)
SELECT task_id, finished_at, coalesce(logs_purged > finished, false) AS logs_purged,
       coalesce(files_cleaned > finished, false) AS files_cleaned
FROM t
WHERE finished IS NOT NULL AND finished > coalesce(started, 0) AND NOT deleted
  AND (logs_purged IS NULL OR logs_purged < finished OR files_cleaned IS NULL OR files_cleaned < finished)
  AND finished_at < $1
"""


async def open_task_ids(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """Tasks not finished since their last create/re-run (or finished with a delete pending), not deleted."""
    return [r["task_id"] for r in await conn.fetch(_OPEN_TASKS)]


async def finished_tasks(
    conn: asyncpg.Connection | asyncpg.Pool, finished_before: datetime
) -> list[Finished]:
    """Finished tasks whose log text or files retention has not removed since their last finish."""
    rows = await conn.fetch(_FINISHED_TASKS, finished_before)
    return [Finished(r["task_id"], r["finished_at"], r["logs_purged"], r["files_cleaned"]) for r in rows]


async def has_events(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM data_pipeline_events WHERE task_id = $1)", task_id)
    )


async def event_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    *,
    after_seq: int | None,
    limit: int,
    types: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Up to `limit` + 1 of a task's stored events after `after_seq` (the extra one says "more"), as rows
    for display: seq, envelope columns, `recorded_at` and the payload upcast to the current shape (not
    validated, so one odd event does not hide a task's history)."""
    where = ["task_id = $1"]
    args: list[Any] = [task_id]
    if after_seq is not None:
        args.append(after_seq)
        where.append(f"seq > ${len(args)}")
    if types:
        args.append(list(types))
        where.append(f"type = ANY(${len(args)}::text[])")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT seq, event_id, type, task_id, occurred_at, producer, payload, version, recorded_at"
        f" FROM data_pipeline_events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ${len(args)}",
        *args,
    )
    return [
        {**{k: r[k] for k in ("seq", *_ENVELOPE_COLUMNS, "recorded_at")}, "payload": _display_payload(r)}
        for r in rows
    ]


def _display_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return upcast(row["type"], _version(row), _payload(row))
    except UndecodableEvent:
        return _payload(row)


class EventStore:
    """The store's reads on a pool, as the scheduler's `EventSource` port wants them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open_task_ids(self) -> list[str]:
        return await open_task_ids(self._pool)

    async def finished_tasks(self, finished_before: datetime) -> list[Finished]:
        return await finished_tasks(self._pool, finished_before)

    async def task_events(self, task_id: str) -> list[EventEnvelope]:
        return await task_events(self._pool, task_id)

    async def stored(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these events the store holds."""
        rows = await self._pool.fetch(_STORED, list(event_ids))
        return {r["event_id"] for r in rows}


_STORED = "SELECT event_id FROM data_pipeline_events WHERE event_id = ANY($1::uuid[])"
