"""Gateway: `/stream` resumes from Last-Event-ID (issue #10, defect 2 server side) and keeps streaming
across a re-run (defect 1 server side). Stored events are written as the collector would; live ones are
published on the gateway tests' events exchange."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.api_gateway.adapters import read_models
from services.api_gateway.keys import BROKER
from shared.broker import Publisher
from shared.events import StepProgress, StepSucceeded, TaskFinished, TaskRerunRequested, TaskStarted
from shared.messages import EventEnvelope
from shared.steps import StepName
from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ReadModels,
    SseReader,
    event_envelope,
    events,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration


def _event_of(frame_id: str | None) -> str | None:
    """The event a frame's id names (a beat's id is `<durable event>/<beat>`)."""
    return frame_id.rpartition("/")[2] if frame_id else None


def _progress(percent: float) -> StepProgress:
    return StepProgress(step=StepName.DDL_GENERATION, execution_id="x", percent=percent)


async def _store(rows: ReadModels, envelope: EventEnvelope) -> None:
    """The event as the collector stores it."""
    await rows.pg.execute(
        """INSERT INTO data_pipeline_events (event_id, type, task_id, occurred_at, producer, payload)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
        envelope.event_id,
        envelope.type,
        envelope.task_id,
        envelope.occurred_at,
        envelope.producer,
        json.dumps(envelope.payload.model_dump(mode="json")),
    )


async def _stored(rows: ReadModels, task_id: str, *payloads: Any) -> list[str]:
    ids = []
    for payload in payloads:
        envelope = event_envelope(task_id, payload)
        await _store(rows, envelope)
        ids.append(str(envelope.event_id))
    return ids


@asynccontextmanager
async def _stream(
    gateway: TestClient, task_id: str, last_event_id: str | None = None
) -> AsyncIterator[SseReader]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with gateway.get(f"{API}/tasks/{task_id}/stream", headers=headers) as resp:
        assert resp.status == 200
        yield SseReader(resp)


async def test_resume_sends_the_stored_events_after_the_id_then_live_ones_without_a_snapshot(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    task_id = await rows.task(status="in_progress")
    ids = await _stored(rows, task_id, TaskStarted(), _progress(10), _progress(20), _progress(30))
    async with _stream(gateway, task_id, f"{ids[0]}/{ids[1]}") as reader:
        replayed = [await reader.next(), await reader.next()]
        assert [(e.event, e.id, e.data["payload"]["percent"]) for e in replayed if e] == [
            ("step_progress", f"{ids[0]}/{ids[2]}", 20.0),
            ("step_progress", f"{ids[0]}/{ids[3]}", 30.0),
        ]
        live = await events.event(task_id, _progress(40))
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("step_progress", f"{ids[0]}/{live.event_id}")
        # The store catching up with the live event (the collector) sends nothing twice: the next frame
        # after a keep-alive is the next live event.
        await _store(rows, live)
        await reader.comment()
        finished = await events.event(task_id, TaskFinished(status="completed"))
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("task_finished", str(finished.event_id))
        end = await reader.next()
        assert end is not None and end.event == "end" and end.data["status"] == "completed"
        assert end.id == str(finished.event_id)
        assert await reader.next() is None


async def test_an_event_stored_but_never_seen_live_is_not_lost(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    """Published before the stream subscribed, stored after it read the store: the catch-up finds it."""
    task_id = await rows.task(status="in_progress")
    [first] = await _stored(rows, task_id, TaskStarted())
    async with _stream(gateway, task_id) as reader:
        snapshot = await reader.until("snapshot")
        assert snapshot.id == first  # the newest stored event the snapshot reflects
        [late] = await _stored(rows, task_id, _progress(50))
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("step_progress", f"{first}/{late}")
        live = await events.event(task_id, _progress(60))
        got = await reader.next()
        assert got is not None and _event_of(got.id) == str(live.event_id)


async def test_a_compacted_beat_resumes_after_the_durable_event_before_it(
    gateway: TestClient, rows: ReadModels
) -> None:
    """The collector deletes an execution's beats but its last ones when it finishes: a client whose last
    frame was a deleted beat resumes at the next durable event, without the beats before it."""
    task_id = await rows.task(status="in_progress")
    started, gone, kept, succeeded = await _stored(
        rows,
        task_id,
        TaskStarted(),
        _progress(40),
        _progress(90),
        StepSucceeded(step=StepName.DDL_GENERATION, execution_id="x"),
    )
    await rows.pg.execute("DELETE FROM data_pipeline_events WHERE event_id = $1", uuid.UUID(gone))
    async with _stream(gateway, task_id, f"{started}/{gone}") as reader:
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("step_succeeded", succeeded), (got, kept)
    # A beat still stored resumes exactly after it.
    async with _stream(gateway, task_id, f"{started}/{kept}") as reader:
        got = await reader.next()
        assert got is not None and got.id == succeeded


async def test_a_replay_that_holds_the_end_ends(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="failed")
    ids = await _stored(rows, task_id, TaskStarted(), TaskFinished(status="failed", error_message="boom"))
    async with _stream(gateway, task_id, ids[0]) as reader:
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("task_finished", ids[1])
        end = await reader.next()
        assert end is not None and (end.event, end.data["status"], end.id) == ("end", "failed", ids[1])
        assert await reader.next() is None


async def test_following_a_finished_task_streams_its_rerun(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    task_id = await rows.task(status="completed")
    await _stored(rows, task_id, TaskStarted(), TaskFinished(status="completed"))
    async with _stream(gateway, task_id) as reader:
        snapshot = await reader.until("snapshot")
        end = await reader.next()
        assert end is not None and end.event == "end" and end.id == snapshot.id
    # EventSource reconnects with the id of `end`: nothing new, so the stream stays open...
    async with _stream(gateway, task_id, end.id) as reader:
        assert await reader.response.content.readline() == b"retry: 3000\n"  # subscribed and open
        await reader.comment()
        rerun = await events.event(
            task_id, TaskRerunRequested(steps=[StepName.DDL_GENERATION], execution_mode="single")
        )
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("task_rerun_requested", str(rerun.event_id))
        await events.event(task_id, _progress(70))
        assert (await reader.until("step_progress")).data["payload"]["percent"] == 70.0
        await events.event(task_id, TaskFinished(status="completed"))
        assert (await reader.until("end")).data["status"] == "completed"


async def test_an_id_of_no_event_of_the_task_starts_afresh(
    gateway: TestClient, rows: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.api_gateway.adapters.stream_positions.RESOLVE_WAIT_SECONDS", 0.3)
    task_id = await rows.task(status="in_progress")
    other = await rows.task(status="in_progress")
    [foreign] = await _stored(rows, other, _progress(1))
    for last_event_id in (
        str(uuid.uuid4()),
        foreign,
        f"{foreign}/{uuid.uuid4()}",
        "not-an-event-id",
        "42",
        "/",
    ):
        async with _stream(gateway, task_id, last_event_id) as reader:
            first = await reader.next()
            assert first is not None and first.event == "snapshot", last_event_id


async def test_a_fresh_stream_follows_a_rerun_published_before_the_read_model_shows_it(
    gateway: TestClient, rows: ReadModels, events: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 1's race: the task still reads `completed` while its re-run is already on the broker."""
    task_id = await rows.task(status="completed")
    real_get_task = read_models.get_task
    rerun: list[EventEnvelope] = []

    async def get_task_after_the_rerun_is_published(pool: Any, wanted: str) -> Any:
        row = await real_get_task(pool, wanted)  # the finished run, as the read model still shows it
        rerun.append(
            await events.event(
                task_id, TaskRerunRequested(steps=[StepName.DDL_GENERATION], execution_mode="single")
            )
        )

        async def buffered() -> bool:
            return any(not s._buffer.empty() for s in gateway.app[BROKER].subscriptions)

        await eventually(buffered, timeout=5, what="the re-run in the stream's buffer")
        return row

    monkeypatch.setattr(read_models, "get_task", get_task_after_the_rerun_is_published)
    async with _stream(gateway, task_id) as reader:
        assert (await reader.until("snapshot")).data["status"] == "completed"
        got = await reader.next()
        assert got is not None and (got.event, got.id) == ("task_rerun_requested", str(rerun[0].event_id))
        await events.event(task_id, TaskFinished(status="completed"))
        assert (await reader.until("end")).data["status"] == "completed"


async def test_a_fresh_stream_of_a_finished_task_still_ends_at_once(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    task_id = await rows.task(status="completed")
    async with _stream(gateway, task_id) as reader:
        assert (await reader.until("snapshot")).data["status"] == "completed"
        end = await reader.next()
        assert end is not None and end.event == "end" and await reader.next() is None
