"""Compaction of heartbeats and progress in the event store (issue 11, goal 5; docs/decisions.md,
"Collector"). A running execution sends a heartbeat every few seconds and progress now and then: kept
forever they would be most of the store. Each beat overwrites what the one before it wrote (the
execution's last sign of life and progress, the step's progress in the task), so once the execution has
finished only its last beat and last progress still say something; the rest are deleted in the
transaction that records the finish, and beats arriving after the finish are never kept. Beats that a
later beat of the same batch overwrites are never stored at all (`coalesce`): a collector that is behind
takes large batches, and then most beats it reads are already out of date. A rebuild from the compacted
store gives the same read models (tests/integration/test_collector_batches.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shared.events import StepHeartbeat, StepProgress
from shared.messages import EventEnvelope


@dataclass(frozen=True)
class FinishedExecution:
    """An execution the collector saw finish: created by the event at `created_seq` (the row's id),
    finished by the one at `finished_seq`."""

    task_id: str
    execution_id: str
    created_seq: int
    finished_seq: int


BEAT_TYPES: tuple[str, ...] = ("step_heartbeat", "step_progress")
# While an execution runs, these leave the task's finished state and the execution's currency alone.
_QUIET_TYPES = (*BEAT_TYPES, "step_started", "log_emitted", "output_registered", "task_cancel_requested")


# What each beat type writes is written by these later beats of its execution as well.
_OVERWRITTEN_BY = {"step_heartbeat": frozenset(BEAT_TYPES), "step_progress": frozenset({"step_progress"})}


def coalesce(envelopes: Sequence[EventEnvelope]) -> list[EventEnvelope]:
    """`envelopes` (one batch, in order) without the beats a later beat of theirs overwrites: a heartbeat
    followed by a heartbeat or progress of the same execution, a progress followed by a progress, with
    nothing but `_QUIET_TYPES` happening to the task in between (the rule of `compact`, applied before
    storing). Applying the rest gives the read models applying all would, and a rebuild reproduces them."""
    later: dict[str, dict[str, set[str]]] = {}  # task -> execution -> beat types seen after this point
    kept: list[EventEnvelope] = []
    for env in reversed(envelopes):
        payload = env.payload
        if env.type not in _QUIET_TYPES:
            later.pop(env.task_id, None)
        elif isinstance(payload, StepHeartbeat | StepProgress):
            seen = later.setdefault(env.task_id, {}).setdefault(payload.execution_id, set())
            if not seen.isdisjoint(_OVERWRITTEN_BY[env.type]):
                continue
            seen.add(env.type)
        kept.append(env)
    kept.reverse()
    return kept


async def compact(
    conn: asyncpg.Connection, finished: Sequence[FinishedExecution], noop_beats: Sequence[int]
) -> int:
    """Compaction of heartbeats and progress (docs/decisions.md, "collector"); returns the events deleted.

    `noop_beats`: beats of executions that had finished before them; they changed nothing, and nothing
    can make them change anything. For each execution in `finished` (created by the event at `created_seq`,
    finished by the one at `finished_seq`), its beats between the two go except the last beat and the last
    progress: each beat overwrites what the one before it wrote. Only when nothing but `_QUIET_TYPES`
    happened to the task in between (no finish, re-run or new schedule of the step), so that the last
    progress wrote everything the earlier ones did; otherwise the execution's beats stay."""
    deleted = 0
    if noop_beats:
        status = await conn.execute(
            "DELETE FROM data_pipeline_events WHERE seq = ANY($1::bigint[])", list(noop_beats)
        )
        deleted += int(status.split()[-1])
    if finished:
        status = await conn.execute(
            _COMPACT,
            [f.task_id for f in finished],
            [f.execution_id for f in finished],
            [f.created_seq for f in finished],
            [f.finished_seq for f in finished],
            list(BEAT_TYPES),
            list(_QUIET_TYPES),
        )
        deleted += int(status.split()[-1])
    return deleted


_COMPACT = """
DELETE FROM data_pipeline_events d USING (
    SELECT b.seq
    FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[])
        AS f(task_id, execution_id, created_seq, finished_seq)
    CROSS JOIN LATERAL (
        SELECT e.seq, e.type,
               row_number() OVER (ORDER BY e.seq DESC) AS from_last,
               row_number() OVER (PARTITION BY e.type ORDER BY e.seq DESC) AS from_last_of_type
        FROM data_pipeline_events e
        WHERE e.task_id = f.task_id AND e.seq > f.created_seq AND e.seq < f.finished_seq
          AND e.type = ANY($5::text[]) AND e.payload->>'execution_id' = f.execution_id
    ) b
    WHERE NOT EXISTS (
        SELECT 1 FROM data_pipeline_events x
        WHERE x.task_id = f.task_id AND x.seq > f.created_seq AND x.seq < f.finished_seq
          AND x.type <> ALL($6::text[])
    )
      AND b.from_last > 1 AND NOT (b.type = 'step_progress' AND b.from_last_of_type = 1)
) z
WHERE d.seq = z.seq
"""
