"""Gateway: log lines and event history from the read models, and the live SSE views."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from shared.broker import Publisher
from shared.events import LogEmitted, StepProgress, TaskFinished
from shared.messages import EventEnvelope
from shared.steps import StepName
from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ClientFactory,
    ReadModels,
    SseReader,
    events,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration


async def _task_with_logs(rows: ReadModels) -> tuple[str, list[int]]:
    task_id = await rows.task(status="completed")
    base = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    ids = [
        await rows.log(task_id, "starting", level="DEBUG", step="ddl_generation", at=base),
        await rows.log(task_id, "table orders done", step="ddl_generation", at=base + timedelta(minutes=1)),
        await rows.log(
            task_id,
            "slow LLM 100%_done",
            level="WARNING",
            step="qa_generation",
            at=base + timedelta(minutes=2),
        ),
        await rows.log(
            task_id, "SQL failed", level="ERROR", step="sql_validation", at=base + timedelta(minutes=3)
        ),
        await rows.log(
            task_id, "crashed", level="CRITICAL", step="sql_validation", at=base + timedelta(minutes=4)
        ),
    ]
    return task_id, ids


async def test_log_filters(gateway: TestClient, rows: ReadModels) -> None:
    task_id, ids = await _task_with_logs(rows)
    url = f"{API}/tasks/{task_id}/logs"
    data = await call(gateway, "GET", url, 200)
    assert [line["id"] for line in data["logs"]] == ids and data["total"] == 5 and data["next_cursor"] is None
    data = await call(gateway, "GET", url, 200, params={"level": "warning"})
    assert [line["level"] for line in data["logs"]] == ["WARNING", "ERROR", "CRITICAL"]
    data = await call(gateway, "GET", url, 200, params={"step": "3"})
    assert [line["message"] for line in data["logs"]] == ["SQL failed", "crashed"]
    data = await call(gateway, "GET", url, 200, params={"step": "ddl_md_generation", "level": "INFO"})
    assert [line["message"] for line in data["logs"]] == ["table orders done"]
    data = await call(gateway, "GET", url, 200, params={"q": "100%_"})
    assert [line["message"] for line in data["logs"]] == ["slow LLM 100%_done"]
    data = await call(gateway, "GET", url, 200, params={"q": "%"})
    assert data["total"] == 1  # a wildcard character is searched for literally
    data = await call(
        gateway,
        "GET",
        url,
        200,
        params={"since": "2025-01-01T12:01:00Z", "until": "2025-01-01T12:03:00+00:00"},
    )
    assert [line["id"] for line in data["logs"]] == ids[1:4]
    data = await call(gateway, "GET", url, 200, params={"after": str(ids[3])})
    assert [line["id"] for line in data["logs"]] == ids[4:]


async def test_log_pages_by_keyset(gateway: TestClient, rows: ReadModels) -> None:
    task_id, ids = await _task_with_logs(rows)
    url = f"{API}/tasks/{task_id}/logs"
    for order, expected in (("asc", ids), ("desc", list(reversed(ids)))):
        seen, cursor = [], None
        while True:
            params = {"limit": "2", "order": order, **({"cursor": cursor} if cursor else {})}
            data = await call(gateway, "GET", url, 200, params=params)
            seen += [line["id"] for line in data["logs"]]
            cursor = data["next_cursor"]
            if not cursor:
                break
        assert seen == expected


async def test_log_total_is_counted_once_and_capped(make_gateway: ClientFactory, rows: ReadModels) -> None:
    """Issue 7, finding 12: every log page ran an unbounded count(*) with ILIKE. Now the first page
    counts at most DP_LOG_COUNT_LIMIT matches and later pages reuse the count their cursor carries."""
    task_id, ids = await _task_with_logs(rows)
    url = f"{API}/tasks/{task_id}/logs"
    capped = await make_gateway(log_count_limit=3)
    data = await call(capped, "GET", url, 200, params={"limit": "2"})
    assert data["total"] == 3 and data["total_exact"] is False
    data = await call(capped, "GET", url, 200, params={"level": "ERROR"})
    assert data["total"] == 2 and data["total_exact"] is True

    gateway = await make_gateway()
    first = await call(gateway, "GET", url, 200, params={"limit": "2", "order": "asc"})
    assert first["total"] == 5 and first["total_exact"] is True
    await rows.log(task_id, "a line written after the first page")
    second = await call(gateway, "GET", url, 200, params={"limit": "2", "cursor": first["next_cursor"]})
    assert [line["id"] for line in second["logs"]] == ids[2:4]
    assert second["total"] == 5  # carried by the cursor, not counted again
    # The same cursor with other filters names another list: counted afresh.
    other = await call(gateway, "GET", url, 200, params={"q": "a line", "cursor": first["next_cursor"]})
    assert other["total"] == 1 and [line["message"] for line in other["logs"]] == [
        "a line written after the first page"
    ]


async def test_limit_alone_is_the_newest_lines_in_time_order(gateway: TestClient, rows: ReadModels) -> None:
    """Issue #14, item 6: the earlier implementation's `logs?limit=N` is the tail of the log. Before,
    the first N lines came back. Each page is in time order; next_cursor continues to older lines."""
    task_id, ids = await _task_with_logs(rows)
    url = f"{API}/tasks/{task_id}/logs"
    first = await call(gateway, "GET", url, 200, params={"limit": "2"})
    assert [line["id"] for line in first["logs"]] == ids[3:5] and first["total"] == 5
    second = await call(gateway, "GET", url, 200, params={"limit": "2", "cursor": first["next_cursor"]})
    assert [line["id"] for line in second["logs"]] == ids[1:3]
    third = await call(gateway, "GET", url, 200, params={"limit": "2", "cursor": second["next_cursor"]})
    assert [line["id"] for line in third["logs"]] == ids[:1] and third["next_cursor"] is None
    # With a level, the newest lines of that level or higher (the seed's minimum level).
    data = await call(gateway, "GET", url, 200, params={"limit": "2", "level": "WARNING"})
    assert [line["level"] for line in data["logs"]] == ["ERROR", "CRITICAL"]
    # An explicit order keeps its meaning: asc is the oldest first.
    data = await call(gateway, "GET", url, 200, params={"limit": "2", "order": "asc"})
    assert [line["id"] for line in data["logs"]] == ids[:2]


@pytest.mark.parametrize(
    ("params", "invalid"),
    [
        ({"limit": "0"}, ["limit"]),
        ({"limit": "1001"}, ["limit"]),
        ({"level": "LOUD"}, ["level"]),
        ({"step": "step_9"}, ["step"]),
        ({"since": "yesterday"}, ["since"]),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, ["since", "until"]),
        ({"cursor": "%%%"}, ["cursor"]),
        ({"after": "-1"}, ["after"]),
    ],
)
async def test_log_query_errors(
    gateway: TestClient, rows: ReadModels, params: dict[str, str], invalid: list[str]
) -> None:
    task_id = await rows.task()
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/logs", 400, params=params)
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == invalid


async def test_logs_of_unknown_or_invalid_task(gateway: TestClient) -> None:
    await call(gateway, "GET", f"{API}/tasks/task_20200101_000000_nothere/logs", 404)
    await call(gateway, "GET", f"{API}/tasks/task_2020/logs", 400)


async def test_event_history_pages_by_sequence(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task()
    seqs = [await rows.event(task_id, "step_progress", {"percent": p}) for p in (10, 20, 30)]
    await rows.event(
        task_id,
        "task_created",
        {
            "parameters": {
                "db_connection": "postgresql://u:S3cretPw@h/db",
                "db_connection_secret": "enc:v1:xyz",
            }
        },
    )
    url = f"{API}/tasks/{task_id}/events"
    first = await call(gateway, "GET", url, 200, params={"limit": "2"})
    assert [e["seq"] for e in first["events"]] == seqs[:2]
    second = await call(gateway, "GET", url, 200, params={"limit": "2", "cursor": first["next_cursor"]})
    assert second["events"][0]["seq"] == seqs[2] and second["next_cursor"] is None
    created = second["events"][1]["payload"]["parameters"]
    assert created == {"db_connection": "postgresql://u:***@h/db"}
    data = await call(gateway, "GET", url, 200, params={"type": "task_created"})
    assert len(data["events"]) == 1
    # The history outlives the task's records (the store keeps the tombstone).
    await rows.delete_task(task_id)
    await call(gateway, "GET", url, 200)
    await call(gateway, "GET", f"{API}/tasks/task_20200101_000000_nothere/events", 404)
    await call(gateway, "GET", url, 400, params={"cursor": "bad"})


def log_event(
    task_id: str, message: str, *, event_id: uuid.UUID | None = None, level: str = "INFO"
) -> EventEnvelope:
    return EventEnvelope(
        event_id=event_id or uuid.uuid4(),
        task_id=task_id,
        producer="runner",
        payload=LogEmitted(message=message, level=level, step=StepName.DDL_GENERATION),  # type: ignore[arg-type]
    )


async def test_log_follow_sends_backlog_then_live_lines_once(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    task_id = await rows.task(status="in_progress")
    stored = uuid.uuid4()
    backlog = [await rows.log(task_id, "first"), await rows.log(task_id, "second", event_id=stored)]
    await rows.log(task_id, "debug noise", level="DEBUG")
    async with gateway.get(f"{API}/tasks/{task_id}/logs", params={"follow": "true", "level": "INFO"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        reader = SseReader(resp)
        got = [await reader.until("log"), await reader.until("log")]
        assert [e.data["id"] for e in got] == backlog and got[0].id == str(backlog[0])
        # Live: a redelivered copy of a stored line, a filtered-out line, then a new line.
        await events.publish_event(log_event(task_id, "second", event_id=stored))
        await events.publish_event(log_event(task_id, "too quiet", level="DEBUG"))
        await events.publish_event(log_event(task_id, "live with postgresql://u:S3cretPw@h/db"))
        live = await reader.until("log")
        assert live.data["message"] == "live with postgresql://u:***@h/db" and live.data["id"] is None
        await events.event(task_id, TaskFinished(status="completed"))
        end = await reader.until("end")
        assert end.data["status"] == "completed"
        assert await reader.next() is None


async def test_log_follow_by_accept_header_ends_at_once_for_a_finished_task(
    gateway: TestClient, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed")
    line = await rows.log(task_id, "only line")
    async with gateway.get(f"{API}/tasks/{task_id}/logs", headers={"Accept": "text/event-stream"}) as resp:
        reader = SseReader(resp)
        assert (await reader.until("log")).data["id"] == line
        assert (await reader.until("end")).data["status"] == "completed"
        assert await reader.next() is None


async def test_stream_sends_snapshot_then_task_events_until_finished(
    gateway: TestClient, rows: ReadModels, events: Publisher
) -> None:
    task_id = await rows.task(status="in_progress", progress=10)
    async with gateway.get(f"{API}/tasks/{task_id}/stream") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        reader = SseReader(resp)
        snapshot = await reader.until("snapshot")
        assert snapshot.data["task_id"] == task_id and len(snapshot.data["steps"]) == 4
        sent = await events.event(
            task_id, StepProgress(step=StepName.DDL_GENERATION, execution_id="x", percent=42.0)
        )
        got = await reader.until("step_progress")
        assert (
            got.id == f"/{sent.event_id}"  # a beat's id names the durable event before it: none here
            and got.data["payload"]["percent"] == 42.0
            and got.data["type"] == "step_progress"
        )
        # Another task's events are not delivered: this task's own event, published after it on the same
        # channel, is the next one to arrive (a positive marker instead of waiting for nothing).
        await events.event(
            "task_20200101_000000_other1",
            StepProgress(step=StepName.DDL_GENERATION, execution_id="y", percent=1.0),
        )
        await reader.comment()  # idle: keep-alive comments flow
        await events.event(task_id, TaskFinished(status="failed", error_message="boom"))
        finished = await reader.next()
        assert finished is not None and finished.event == "task_finished", finished
        assert finished.data["payload"]["error_message"] == "boom"
        assert (await reader.until("end")).data["status"] == "failed"
        assert await reader.next() is None


async def test_stream_of_finished_unknown_and_invalid_tasks(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    async with gateway.get(f"{API}/tasks/{task_id}/stream") as resp:
        reader = SseReader(resp)
        assert (await reader.until("snapshot")).data["status"] == "completed"
        assert (await reader.until("end")).data["status"] == "completed"
    await call(gateway, "GET", f"{API}/tasks/task_20200101_000000_nothere/stream", 404)
    await call(gateway, "GET", f"{API}/tasks/nope/stream", 400)


async def test_streams_end_when_the_gateway_shuts_down(make_gateway: object, rows: ReadModels) -> None:
    client = await make_gateway(sse_keepalive_seconds=10)  # type: ignore[operator]
    task_id = await rows.task(status="in_progress")
    resp = await client.get(f"{API}/tasks/{task_id}/stream")
    reader = SseReader(resp)
    await reader.until("snapshot")
    closing = asyncio.create_task(client.server.close())  # the server stops; the client stays connected
    end = await reader.until("end")
    assert end.data["reason"] == "shutdown"
    await asyncio.wait_for(closing, 10)
