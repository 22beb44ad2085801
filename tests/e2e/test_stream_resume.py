"""`/stream` on the composed services, read by a raw HTTP client: a reconnect with Last-Event-ID resumes
after that event (no snapshot, nothing twice, nothing missing against the event store), and a client
that keeps following a finished task gets its re-run live (issue #10, defects 1 and 2, server side)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from shared.event_compaction import BEAT_TYPES
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


@dataclass
class Frame:
    event: str
    id: str | None
    data: Any


class RawSse:
    """Server-sent events parsed from the response body's lines (no EventSource)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> Frame | None:
        event, event_id, data = "message", None, []
        while True:
            raw = await self.response.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "" and data:
                return Frame(event, event_id, json.loads("".join(data)))
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


@asynccontextmanager
async def _stream(api: Api, task_id: str, last_event_id: str | None = None) -> AsyncIterator[RawSse]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    timeout = aiohttp.ClientTimeout(total=60, sock_read=20)
    url = f"{api.url}{BASE}/tasks/{task_id}/stream"
    async with api.session.get(url, headers=headers, timeout=timeout) as resp:
        assert resp.status == 200
        yield RawSse(resp)


async def _stored_events(api: Api, task_id: str) -> list[tuple[int, str, str]]:
    found: list[tuple[int, str, str]] = []
    params: dict[str, str] = {"limit": "1000"}
    while True:
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/events", params=params)
        assert status == 200, body
        found += [(e["seq"], e["event_id"], e["type"]) for e in body["data"]["events"]]
        if not body["data"]["next_cursor"]:
            return found
        params["cursor"] = body["data"]["next_cursor"]


async def test_reconnect_resumes_after_the_last_event_and_a_rerun_keeps_streaming(api: Api) -> None:
    task_id = await api.create(DB_URL, "sleep:ddl_generation=2 sleep:qa_generation=1", task_name="resume")
    received: list[str] = []
    async with _stream(api, task_id) as sse:
        snapshot = await sse.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        while len(received) < 4:
            frame = await sse.next()
            assert frame is not None and frame.event != "end", frame
            assert frame.id, frame
            received.append(frame.id)
    last_seen = received[-1]
    # Events go on while nobody listens.
    await api.wait_step(task_id, "qa_generation", "running", timeout=30)

    async with _stream(api, task_id, last_seen) as sse:
        first = await sse.next()
        assert first is not None and first.event != "snapshot", first
        frame: Frame | None = first
        while frame is not None and frame.event != "end":
            assert frame.id, frame
            received.append(frame.id)
            frame = await sse.next()
    assert frame is not None and frame.data["status"] == "completed", frame
    end_id = frame.id

    async def all_stored() -> list[tuple[int, str, str]]:
        found = await _stored_events(api, task_id)
        assert found[-1][1] == end_id  # `end` carries the id of the task's last event (task_finished)
        return found

    stored = await eventually(all_stored, timeout=10, what="the collector to store the task's events")
    events = [frame_id.rpartition("/")[2] for frame_id in received]  # a beat's id: <durable>/<beat>
    assert len(events) == len(set(events)), "an event was sent twice"
    by_id = {event_id: seq for seq, event_id, _ in stored}
    durable = {event_id for _, event_id, kind in stored if kind not in BEAT_TYPES}
    # Beats (heartbeat, progress) of finished executions are compacted away in the store; every other
    # streamed event is there, and none of them after the first one streamed was left out.
    assert {e for e in events if "/" not in received[events.index(e)]} <= durable
    first_seq = min(by_id[e] for e in events if e in by_id)
    missing = [e for seq, e, _ in stored if seq >= first_seq and e in durable and e not in set(events)]
    assert not missing, f"{len(missing)} stored events never streamed"

    # A client that keeps following the finished task (EventSource reconnecting with the id of `end`)
    # gets the re-run live instead of another end.
    async with _stream(api, task_id, end_id) as sse:
        assert await sse.response.content.readline() == b"retry: 3000\n"  # subscribed and open
        status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/execute", json={"single_step": 1})
        assert status == 202, body
        frames: list[Frame] = []
        frame = await sse.next()
        while frame is not None and frame.event != "end":
            frames.append(frame)
            frame = await sse.next()
    types = [f.event for f in frames]
    assert types[0] == "task_rerun_requested" and "step_started" in types and types[-1] == "task_finished"
    assert frame is not None and frame.data["status"] == "completed"

    async def rerun_recorded() -> bool:
        return (await api.task(task_id))["status"] == "completed"

    await eventually(rerun_recorded, timeout=10)
