"""One batch of events into the store and the read models, in the caller's transaction, in a fixed
number of statements whatever the batch's size: which events are new (one query), the new events (one
COPY, or one INSERT for a few: shared/bulk_insert.py; beats a later beat of the batch overwrites are
left out: shared/event_compaction.py), the rows they name (two queries), the handlers
folded over those rows in memory, each touched row written once (pipelined), log lines likewise, then
compaction of heartbeats and progress.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.log_collector.projections import Projector
from shared.event_compaction import coalesce
from shared.event_compaction import compact as compact_beats
from shared.event_store import admit, write_events
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


async def store_batch(
    conn: asyncpg.Connection, envelopes: Sequence[EventEnvelope], *, compact: bool = True
) -> Projector:
    """Store the new events of `envelopes` and apply them in order (without the beats a later one of the
    batch overwrites, when compacting); the projector says what changed."""
    admitted = await admit(conn, candidates(envelopes))
    coalesced = 0
    if compact:
        # After the seqs are reserved: a row's id is its event's seq, the same however events were batched.
        kept = {env.event_id for env in coalesce([env for _, env in admitted])}
        coalesced = len(admitted) - len(kept)
        admitted = [(seq, env) for seq, env in admitted if env.event_id in kept]
    await write_events(conn, admitted)
    projector = Projector(conn)
    projector.coalesced_beats = coalesced
    await projector.load(admitted)
    for seq, envelope in admitted:
        await projector.apply(envelope, seq)
    await projector.flush()
    if compact:
        await compact_beats(conn, projector.finished_executions, projector.noop_beats)
    return projector
