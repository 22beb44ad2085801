"""The statements a small batch spares. A few rows go by one INSERT … unnest statement, many by COPY
(shared/bulk_insert.py): the two paths store the same rows, whatever the text holds (tabs, newlines,
backslashes, quotes, non-ASCII), so the store and the read models do not depend on how many events a
batch happened to carry. A step that sent no beat is not compacted (nothing to delete)."""

# ruff: noqa: F811  (the fixtures imported from test_platform_collector are parameters here)

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import bulk_insert
from shared.db import pool_context
from shared.events import LogEmitted, StepHeartbeat
from shared.messages import EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.integration.test_platform_collector import (  # noqa: F401  (fixtures)
    FakeChannel,
    FakeMessage,
    _collector,
    _deliver,
    _envelopes,
    _read_models,
    _stored_in_own_schema,
    _task_id,
    _wait_settled,
    settings,
)

pytestmark = pytest.mark.integration

TRICKY = 'tab\there, new\nline, cr\r, back\\slash, \'single\' "double", ünïcødé ✓, \\N, {"json": [1]}'
EVENTS = """SELECT seq, event_id, type, task_id, occurred_at, producer, payload::text AS payload, version
            FROM data_pipeline_events ORDER BY seq"""


def _tricky_events(task_id: str, count: int) -> list[EventEnvelope]:
    events = _envelopes(task_id)
    exec_id = events[2].payload.execution_id  # type: ignore[attr-defined]
    lines = [
        EventEnvelope(  # type: ignore[arg-type]
            task_id=task_id,
            producer=f"runner {TRICKY}",
            payload=LogEmitted(
                level="WARNING",
                message=f"{i}: {TRICKY}",
                execution_id=exec_id,
                extra={"note": TRICKY, "i": i},
            ),
            occurred_at=events[3].occurred_at,
        )
        for i in range(count)
    ]
    return [*events[:4], *lines, *events[4:]]


async def _stored(settings: CommonSettings, tmp_path: Path, events: list[EventEnvelope]) -> dict[str, Any]:
    """The events stored in one batch into a schema of their own, and the rows they made."""
    async with _stored_in_own_schema(settings, tmp_path, events, len(events)) as (pool, _):
        async with pool.acquire() as conn:
            rows = await _read_models(conn)
            rows["events"] = [dict(r) for r in await conn.fetch(EVENTS)]
            return rows


@pytest.mark.parametrize("lines", [3, 40])
async def test_a_batch_by_statement_and_by_copy_stores_the_same_rows(
    settings: CommonSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: int
) -> None:
    events = _tricky_events(_task_id(), lines)
    stored = []
    for max_rows, path in ((0, "copy"), (10_000, "statement")):
        monkeypatch.setattr(bulk_insert, "MAX_ROWS", max_rows)
        own = settings.model_copy(update={"db_schema": f"{settings.db_schema}_{path}"})
        stored.append(await _stored(own, tmp_path / path, events))
    by_copy, by_statement = stored
    assert len(by_copy["logs"]) == lines + 2  # the lines, "workflow started" and the step's start
    assert any(TRICKY in row["message"] for row in by_copy["logs"])
    assert by_statement == by_copy


async def test_a_step_without_beats_is_not_compacted_and_one_with_beats_is(
    settings: CommonSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A quick step's finish spares the compaction's query (it has nothing to delete); a step that sent a
    # beat, in this batch or an earlier one, is compacted as before.
    from services.log_collector import batch_store

    compacted: list[str] = []
    real = batch_store.compact_beats

    async def recording(conn: Any, finished: Any, noop_beats: Any) -> int:
        compacted.extend(f.execution_id for f in finished)
        return await real(conn, finished, noop_beats)

    monkeypatch.setattr(batch_store, "compact_beats", recording)
    quick = _envelopes(_task_id())
    beating = _envelopes(_task_id())
    beat_exec = beating[2].payload.execution_id  # type: ignore[attr-defined]
    beat = EventEnvelope(  # type: ignore[arg-type]
        task_id=beating[0].task_id,
        producer="test",
        payload=StepHeartbeat(step=beating[2].payload.step, execution_id=beat_exec, runner_id="r1"),  # type: ignore[attr-defined]
        occurred_at=beating[3].occurred_at + timedelta(milliseconds=1),
    )
    own = settings.model_copy(update={"db_schema": f"{settings.db_schema}_beats"})
    # The beat is stored in a batch before the one that finishes its step.
    await _stored(own, tmp_path, [*quick, *beating[:4], beat])
    assert compacted == []
    own = settings.model_copy(update={"db_schema": f"{settings.db_schema}_beats2"})
    await migrate(own)
    try:
        async with pool_context(own, max_size=2) as pool:
            collector = _collector(pool, tmp_path, batch_size=100)
            for batch in ([*quick, *beating[:4], beat], beating[4:]):
                messages = [FakeMessage(e, FakeChannel()) for e in batch]
                await _deliver(collector, messages)
                await _wait_settled(messages)
            await collector.drain()
    finally:
        await drop_schema(own)
    assert compacted == [beat_exec]
