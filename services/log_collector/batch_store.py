"""One batch of events into the store and the read models, in the caller's transaction, in a fixed
number of statements whatever the batch's size: which events are new (one query), the new events (one
COPY, or one INSERT for a few: shared/bulk_insert.py; beats a later beat of the batch overwrites are
left out: shared/event_compaction.py), the rows they name (two queries), the handlers
folded over those rows in memory, each touched row written once (pipelined), log lines likewise, then
compaction of heartbeats and progress. What needs no database (`prepare`) is done before the batch's turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from services.log_collector.projections import Projector
from shared import bulk_insert
from shared.event_compaction import coalesce
from shared.event_compaction import compact as compact_beats
from shared.event_store import admit, event_line, write_events
from shared.events import TaskDeleted
from shared.messages import EventEnvelope


def candidates(envelopes: Sequence[EventEnvelope]) -> list[EventEnvelope]:
    """The batch in order without repeats of an event id and without a task's events after its delete
    (the tombstone would refuse them; it is written while the batch is applied)."""
    seen: set[object] = set()
    deleted: set[str] = set()
    out: list[EventEnvelope] = []
    for env in envelopes:
        if env.event_id in seen or env.task_id in deleted:
            continue
        seen.add(env.event_id)
        out.append(env)
        if isinstance(env.payload, TaskDeleted):
            deleted.add(env.task_id)
    return out


@dataclass(frozen=True)
class PreparedBatch:
    """A batch's work that needs no database, done before the batch takes its turn to store (while the
    batch before it waits on PostgreSQL): its candidates, and the event store's COPY lines of those
    likely to be stored (all of them, less the beats `coalesce` would leave out if none were stored yet)."""

    events: list[EventEnvelope]
    lines: dict[UUID, str]


def prepare(envelopes: Sequence[EventEnvelope], *, compact: bool = True) -> PreparedBatch:
    events = candidates(envelopes)
    if not bulk_insert.by_copy(len(events)):
        return PreparedBatch(events, {})
    likely = coalesce(events) if compact else events
    return PreparedBatch(events, {env.event_id: event_line(env) for env in likely})


async def store_batch(conn: asyncpg.Connection, batch: PreparedBatch, *, compact: bool = True) -> Projector:
    """Store the new events of `batch` and apply them in order (without the beats a later one of the
    batch overwrites, when compacting); the projector says what changed."""
    admitted = await admit(conn, batch.events)
    coalesced = 0
    if compact:
        # After the seqs are reserved: a row's id is its event's seq, the same however events were batched.
        kept = {env.event_id for env in coalesce([env for _, env in admitted])}
        coalesced = len(admitted) - len(kept)
        admitted = [(seq, env) for seq, env in admitted if env.event_id in kept]
    await write_events(conn, admitted, batch.lines)
    projector = Projector(conn)
    projector.coalesced_beats = coalesced
    await projector.load(admitted)
    for seq, envelope in admitted:
        await projector.apply(envelope, seq)
    await projector.flush()
    if compact:
        await compact_beats(conn, projector.finished_executions, projector.noop_beats)
    return projector
