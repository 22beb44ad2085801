"""Positions in a task's event history for resumable streams (`/stream` with Last-Event-ID).

A stream's `id:` names the event it follows by `event_id`, and resuming needs where that event sits in
the store (`seq`). Two things can keep an event from being found there:

- it is not stored yet: the client received it live and the collector stores it a moment later, so
  the lookup waits for it a little;
- it was a beat (heartbeat or progress) that the collector compacted away once its execution finished
  (shared/event_compaction.py). A beat's id therefore also carries the durable event before it,
  `<durable event_id>/<beat event_id>`, and a resume whose beat is gone continues after that durable
  event, leaving out the beats up to the next durable one: those the client had, or the compacted
  execution's last beats, which its end (the next durable event) supersedes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared import event_store
from shared.event_compaction import BEAT_TYPES

# How long a resume waits for the collector to store the client's last event before starting afresh.
RESOLVE_WAIT_SECONDS = 2.0
_RESOLVE_INTERVAL = 0.1


def stream_id(event_id: str, event_type: str, durable_id: str | None) -> str:
    """The `id:` of an event in a stream whose last durable event so far is `durable_id`."""
    if event_type in BEAT_TYPES:
        return f"{durable_id or ''}/{event_id}"
    return event_id


def is_durable(event_type: str) -> bool:
    return event_type not in BEAT_TYPES


@dataclass(frozen=True)
class ResumePoint:
    seq: int
    skip_beats: bool  # leave out stored beats up to the next durable event


@dataclass(frozen=True)
class Snapshot:
    seq: int
    id: str
    durable_id: str | None


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def parse_stream_id(value: str | None) -> tuple[uuid.UUID | None, uuid.UUID | None] | None:
    """(durable, beat) event ids from a Last-Event-ID; None when it cannot name a task's event."""
    if not value or len(value) > 100:
        return None
    durable_text, slash, beat_text = value.partition("/")
    durable = _uuid(durable_text) if durable_text else None
    beat = _uuid(beat_text) if slash else None
    if (durable_text and durable is None) or (slash and beat is None) or (durable is None and beat is None):
        return None
    return durable, beat


async def _seq(pool: asyncpg.Pool, task_id: str, event_id: uuid.UUID) -> int | None:
    seq: int | None = await pool.fetchval(
        "SELECT seq FROM data_pipeline_events WHERE event_id = $1 AND task_id = $2", event_id, task_id
    )
    return seq


async def _durable_after(pool: asyncpg.Pool, task_id: str, seq: int) -> bool:
    found = await pool.fetchval(
        "SELECT 1 FROM data_pipeline_events WHERE task_id = $1 AND seq > $2 AND NOT (type = ANY($3::text[]))"
        " LIMIT 1",
        task_id,
        seq,
        list(BEAT_TYPES),
    )
    return found is not None


async def _wait_for(pool: asyncpg.Pool, task_id: str, event_id: uuid.UUID, wait: float) -> int | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        seq = await _seq(pool, task_id, event_id)
        if seq is not None or loop.time() >= deadline:
            return seq
        await asyncio.sleep(_RESOLVE_INTERVAL)


async def resume_point(pool: asyncpg.Pool, task_id: str, last_event_id: str | None) -> ResumePoint | None:
    """Where a stream resuming after `last_event_id` continues in the store; None: start afresh (no such
    event of this task, or an id this server never gave)."""
    parsed = parse_stream_id(last_event_id)
    if parsed is None:
        return None
    durable, beat = parsed
    if beat is None:
        assert durable is not None
        seq = await _wait_for(pool, task_id, durable, RESOLVE_WAIT_SECONDS)
        return ResumePoint(seq, skip_beats=False) if seq is not None else None
    if (seq := await _seq(pool, task_id, beat)) is not None:
        return ResumePoint(seq, skip_beats=False)
    durable_seq = await _seq(pool, task_id, durable) if durable else None
    # Stored in stream order: a durable event stored after the client's means its beat, published
    # before that, was stored too and compacted since. Otherwise the beat may not be stored yet.
    if durable_seq is None or not await _durable_after(pool, task_id, durable_seq):
        if (seq := await _wait_for(pool, task_id, beat, RESOLVE_WAIT_SECONDS)) is not None:
            return ResumePoint(seq, skip_beats=False)
        if durable is not None and durable_seq is None:
            durable_seq = await _seq(pool, task_id, durable)
    return ResumePoint(durable_seq, skip_beats=True) if durable_seq is not None else None


async def snapshot_position(pool: asyncpg.Pool, task_id: str) -> Snapshot | None:
    """The task's newest stored event as a stream position (None: nothing stored yet)."""
    newest = await pool.fetchrow(
        "SELECT seq, event_id, type FROM data_pipeline_events WHERE task_id = $1 ORDER BY seq DESC LIMIT 1",
        task_id,
    )
    if newest is None:
        return None
    if is_durable(newest["type"]):
        return Snapshot(seq=newest["seq"], id=str(newest["event_id"]), durable_id=str(newest["event_id"]))
    durable = await pool.fetchval(
        "SELECT event_id FROM data_pipeline_events WHERE task_id = $1 AND NOT (type = ANY($2::text[]))"
        " ORDER BY seq DESC LIMIT 1",
        task_id,
        list(BEAT_TYPES),
    )
    durable_id = str(durable) if durable else None
    return Snapshot(
        seq=newest["seq"],
        id=stream_id(str(newest["event_id"]), newest["type"], durable_id),
        durable_id=durable_id,
    )


async def after(pool: asyncpg.Pool, task_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` + 1 of the task's stored events after `seq`, oldest first (display rows)."""
    return await event_store.event_page(pool, task_id, after_seq=seq, limit=limit)
