"""Beats a later beat of the same batch overwrites are never stored (shared/event_compaction.py,
`coalesce`), on the real PostgreSQL: the read models are those of storing every event on its own, and a
rebuild from what was stored reproduces them. The history crosses a failure, a beat after it, a retry and
an execution still running, where dropping a beat across the wrong event would change a row."""

# ruff: noqa: F811  (the fixtures imported from test_platform_collector are parameters here)

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from services.log_collector.batch_store import prepare, store_batch
from services.log_collector.rebuild import rebuild_read_models
from shared import bulk_insert
from shared.db import pool_context
from shared.events import (
    LogEmitted,
    StepFailed,
    StepHeartbeat,
    StepProgress,
    StepRetryScheduled,
    StepScheduled,
    StepStarted,
)
from shared.ids import execution_id
from shared.messages import EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.integration.test_platform_collector import (  # noqa: F401  (fixtures)
    _envelopes,
    _read_models,
    _stored_in_own_schema,
    _task_id,
    settings,
)

pytestmark = pytest.mark.integration


def _history(task_id: str) -> tuple[list[EventEnvelope], str, str]:
    first = _envelopes(task_id)[:4]  # created, started, step scheduled, step started
    step = first[2].payload.step  # type: ignore[attr-defined]
    failed_exec = first[2].payload.execution_id  # type: ignore[attr-defined]
    at = first[3].occurred_at
    retry_exec = execution_id(task_id, step, at + timedelta(seconds=20), 2)

    def hb(execution: str) -> StepHeartbeat:
        return StepHeartbeat(step=step, execution_id=execution, runner_id="r1")

    def pr(execution: str, percent: float) -> StepProgress:
        return StepProgress(step=step, execution_id=execution, percent=percent)

    payloads: list[BaseModel] = [
        hb(failed_exec),
        pr(failed_exec, 10),
        hb(failed_exec),
        LogEmitted(message="halfway", step=step, execution_id=failed_exec),
        pr(failed_exec, 20),
        hb(failed_exec),  # the last sign of life the failure's log line reports
        StepFailed(step=step, execution_id=failed_exec, error="boom", retryable=True),
        hb(failed_exec),  # after the failure: changes nothing
        StepRetryScheduled(step=step, next_attempt=2, delay_seconds=1, reason="boom"),
        StepScheduled(step=step, execution_id=retry_exec, attempt=2),
        StepStarted(step=step, execution_id=retry_exec, runner_id="r2"),
        hb(retry_exec),
        pr(retry_exec, 30),
        hb(retry_exec),
        pr(retry_exec, 40),  # the retry is still running: no compaction at a finish
    ]
    later = [
        EventEnvelope(  # type: ignore[arg-type]
            task_id=task_id, producer="test", payload=p, occurred_at=at + timedelta(seconds=i + 1)
        )
        for i, p in enumerate(payloads)
    ]
    return [*first, *later], failed_exec, retry_exec


async def _store(
    settings: CommonSettings, tmp_path: Path, events: list[EventEnvelope], batch_size: int
) -> tuple[dict[str, list[dict[str, Any]]], list[tuple[str, str]], bool, float | None]:
    """The read models and the stored beats ((type, execution)) of `events` delivered in batches of
    `batch_size`, whether a rebuild from the store reproduced the read models, and the collector's count
    of beats left out."""
    async with _stored_in_own_schema(settings, tmp_path, events, batch_size) as (pool, collector):
        async with pool.acquire() as conn:
            live = await _read_models(conn)
            beats = await conn.fetch(
                "SELECT type, payload->>'execution_id' AS e FROM data_pipeline_events"
                " WHERE type IN ('step_heartbeat', 'step_progress') ORDER BY seq"
            )
        await rebuild_read_models(pool)
        async with pool.acquire() as conn:
            rebuilt = await _read_models(conn)
        left_out = collector.metrics.registry.get_sample_value("dp_collector_beats_coalesced_total")
        return live, [(b["type"], b["e"]) for b in beats], rebuilt == live, left_out


async def test_a_batch_stores_fewer_beats_and_the_same_read_models_as_one_event_at_a_time(
    settings: CommonSettings, tmp_path: Path
) -> None:
    events, failed_exec, retry_exec = _history(_task_id())
    one_by_one = settings.model_copy(update={"db_schema": f"{settings.db_schema}_single"})
    batched = settings.model_copy(update={"db_schema": f"{settings.db_schema}_batch"})
    single, single_beats, single_rebuilt, none_left_out = await _store(
        one_by_one, tmp_path / "single", events, 1
    )
    batch, batch_beats, batch_rebuilt, left_out = await _store(
        batched, tmp_path / "batch", events, len(events)
    )

    # The same rows, ids included: a beat left out still had its seq reserved.
    assert batch == single
    assert batch_rebuilt and single_rebuilt
    # One at a time, nothing can be coalesced: the failed execution is compacted at its failure (its last
    # beat and last progress stay), the running one keeps all four.
    assert single_beats == [
        ("step_progress", failed_exec),
        ("step_heartbeat", failed_exec),
        *[(kind, retry_exec) for kind in ("step_heartbeat", "step_progress") * 2],
    ]
    # In one batch the beats before the last heartbeat and progress of each execution are never stored
    # (three of each), and the collector counts them.
    assert (none_left_out, left_out) == (0, 6)
    assert batch_beats == [
        ("step_progress", failed_exec),
        ("step_heartbeat", failed_exec),
        ("step_progress", retry_exec),
    ]
    retry = next(r for r in batch["executions"] if r["execution_id"] == retry_exec)
    assert retry["progress"] == 40 and retry["status"] == "running"
    failed = next(r for r in batch["executions"] if r["execution_id"] == failed_exec)
    assert failed["last_heartbeat_at"] == events[9].occurred_at  # the beat right before the failure


async def test_a_beat_kept_only_because_its_later_beat_was_stored_before_is_stored_whole(
    settings: CommonSettings,
) -> None:
    # The COPY lines are made before the batch's turn for the events coalescing would keep if none were
    # stored yet. Here a heartbeat's later beat is a redelivery: the store keeps the heartbeat, whose
    # line was not made beforehand.
    events, _, _ = _history(_task_id())
    first, later_beat = events[:4], events[4]
    step, running = first[2].payload.step, first[2].payload.execution_id  # type: ignore[attr-defined]
    earlier_beat = EventEnvelope(  # type: ignore[arg-type]
        task_id=later_beat.task_id,
        producer="late runner",
        payload=StepHeartbeat(step=step, execution_id=running, runner_id="r9"),
        occurred_at=later_beat.occurred_at - timedelta(milliseconds=500),
    )
    lines = [
        EventEnvelope(  # type: ignore[arg-type]
            task_id=later_beat.task_id,
            producer="test",
            payload=LogEmitted(message=f"line {i}", execution_id=running),
            occurred_at=later_beat.occurred_at,
        )
        for i in range(bulk_insert.MAX_ROWS)
    ]
    second = prepare([*lines, earlier_beat, later_beat])
    assert bulk_insert.by_copy(len(second.events)) and earlier_beat.event_id not in second.lines

    await migrate(settings)
    try:
        async with pool_context(settings, max_size=1) as pool, pool.acquire() as conn:
            for batch in (prepare([*first, later_beat]), second):
                async with conn.transaction():
                    await store_batch(conn, batch)
            stored = await conn.fetch(
                "SELECT event_id, producer, payload::text AS payload FROM data_pipeline_events"
                " WHERE type = 'step_heartbeat' ORDER BY seq"
            )
            logged = await conn.fetchval(
                "SELECT count(*) FROM data_pipeline_task_logs WHERE message LIKE 'line %'"
            )
    finally:
        await drop_schema(settings)
    assert [(r["event_id"], r["producer"]) for r in stored] == [
        (later_beat.event_id, "test"),
        (earlier_beat.event_id, "late runner"),
    ]
    assert json.loads(stored[1]["payload"]) == earlier_beat.payload.model_dump(mode="json")
    assert logged == len(lines)
