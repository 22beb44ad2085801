"""`GET /tasks/{id}/stream`: every event of a task as it happens, resumable.

A fresh stream sends a `snapshot` of the task's detail, then its events live. Every frame carries an
`id:` naming its event (the snapshot's: the newest stored event it reflects; a beat's also names the
durable event before it, adapters/stream_positions.py), so a client that reconnects with
`Last-Event-ID` (as EventSource does by itself) gets, instead of a new snapshot, every stored event
after that one and then the live ones: no gap and no event twice.

Ending: after `task_finished`/`task_deleted` comes `end` (carrying the same id), and a fresh stream of
a task that is already finished sends `snapshot` and `end` at once. A client that keeps following
(reconnects with the id of `end`) is not turned away: nothing new means an open stream with keep-alives
until a re-run's events arrive, which it then streams live (the task moving from finished back to in
progress). A client that does not want that closes on `end`.

Gaps: the stream subscribes before it reads the store. An event published before the subscription but
stored after the read would be in neither, so for a while the store is polled for events past the
stream's position, until it holds an event the stream also received live (from then on the store has
everything published before the subscription) or `CATCH_UP_SECONDS` have passed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from services.api_gateway.adapters import read_models, stream_positions
from services.api_gateway.adapters.broker import EventSubscription, GatewayBroker
from services.api_gateway.auth import stream_slot
from services.api_gateway.keys import BROKER, POOL, SETTINGS
from services.api_gateway.routes.streams import END_EVENTS, Seen, end_status, streaming
from services.api_gateway.schemas.responses import EventView
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.sse import SseWriter
from services.api_gateway.task_views import event_from_envelope, event_from_row, task_detail
from services.api_gateway.validation import require_task_id, task_not_found
from shared.messages import EventEnvelope

REPLAY_PAGE = 500
CATCH_UP_SECONDS = 10.0
CATCH_UP_INTERVAL = 0.5
# Events that move a finished task back to running.
RESTART_EVENTS = ("task_rerun_requested", "task_started")


class _TaskStream:
    """One response: what it sent, its position in the store, and whether the store has caught up."""

    def __init__(self, writer: SseWriter, pool: asyncpg.Pool, task_id: str, seq: int) -> None:
        self.writer, self.pool, self.task_id = writer, pool, task_id
        self.seq = seq  # the store's events up to here are sent (or reflected in the snapshot)
        self.sent = Seen()
        self.live = Seen()
        self.caught_up = False
        self.last_id: str | None = None
        self.durable_id: str | None = None  # the last durable event sent (beats' ids carry it)

    async def send(self, event: str, data: dict[str, Any], event_id: str | None) -> None:
        await self.writer.send(event, data, event_id=event_id)
        self.last_id = event_id or self.last_id

    async def send_event(self, view: EventView) -> None:
        if self.sent.add(view.event_id):
            sid = stream_positions.stream_id(view.event_id, view.type, self.durable_id)
            await self.send(view.type, view.model_dump(mode="json"), sid)
            if stream_positions.is_durable(view.type):
                self.durable_id = view.event_id

    async def end(self, status: str | None = None, **extra: Any) -> None:
        data = {"task_id": self.task_id, "status": status} if status else extra
        await self.writer.send("end", data, event_id=self.last_id)

    async def from_store(self, skip_beats: bool = False) -> str | None:
        """Send the stored events past the position (`skip_beats`: not the beats before the first durable
        one); the end status if the last of the task's starts and ends among the newly sent ones is an
        end (None: the task did not end, or ended before)."""
        ended: str | None = None
        while True:
            rows = await stream_positions.after(self.pool, self.task_id, self.seq, REPLAY_PAGE)
            for row in rows[:REPLAY_PAGE]:
                self.seq, event_id = row["seq"], str(row["event_id"])
                if skip_beats and not stream_positions.is_durable(row["type"]):
                    continue
                skip_beats = False
                if self.live.seen(event_id):
                    self.caught_up = True
                new = not self.sent.seen(event_id)
                await self.send_event(event_from_row(row))
                if new and row["type"] in END_EVENTS:
                    ended = (
                        "deleted"
                        if row["type"] == "task_deleted"
                        else row["payload"].get("status", "finished")
                    )
                elif row["type"] in RESTART_EVENTS:
                    ended = None
            if len(rows) <= REPLAY_PAGE:
                return ended

    async def follow(self, subscription: EventSubscription, keepalive: float) -> None:
        """Live events (and the store until it caught up) until the task ends, the subscription closes
        or the client leaves."""
        loop = asyncio.get_running_loop()
        catch_up_until = loop.time() + CATCH_UP_SECONDS
        quiet_since = loop.time()
        while True:
            polling = not self.caught_up and loop.time() < catch_up_until
            try:
                event = await subscription.get(min(CATCH_UP_INTERVAL, keepalive) if polling else keepalive)
            except TimeoutError:
                if polling and (ended := await self.from_store()):
                    await self.end(ended)
                    return
                if loop.time() - quiet_since >= keepalive * 0.99:
                    await self.writer.comment("keep-alive")
                    quiet_since = loop.time()
                continue
            if event is None:
                await self.end(reason="overflow" if subscription.overflowed else "shutdown")
                return
            quiet_since = loop.time()
            if await self.live_event(event):
                return

    async def live_event(self, event: EventEnvelope) -> bool:
        """Send a live event (once); True when it ended the task and the stream with it."""
        self.live.add(str(event.event_id))
        await self.send_event(event_from_envelope(event))
        if event.type in END_EVENTS:
            await self.end(end_status(event))
            return True
        return False


async def stream_task(request: web.Request) -> web.StreamResponse:
    task_id = require_task_id(request)
    broker, pool = request.app[BROKER], request.app[POOL]
    if await read_models.task_status(pool, task_id) is None:
        raise task_not_found(task_id)
    with stream_slot(request):
        return await _stream_task(request, broker, pool, task_id, request.headers.get("Last-Event-ID"))


async def _stream_task(
    request: web.Request,
    broker: GatewayBroker,
    pool: asyncpg.Pool,
    task_id: str,
    last_event_id: str | None,
) -> web.StreamResponse:
    keepalive = request.app[SETTINGS].sse_keepalive_seconds
    subscription = broker.subscribe(task_id)
    try:
        async with subscription:
            resume = await stream_positions.resume_point(pool, task_id, last_event_id)
            if resume is not None:
                async with streaming(request) as writer:
                    stream = _TaskStream(writer, pool, task_id, resume.seq)
                    stream.last_id = last_event_id
                    stream.durable_id = (last_event_id or "").partition("/")[0] or None
                    if ended := await stream.from_store(resume.skip_beats):
                        await stream.end(ended)
                        return writer.response
                    await stream.follow(subscription, keepalive)
                return writer.response
            position = await stream_positions.snapshot_position(pool, task_id)  # first: nothing is skipped
            row = await read_models.get_task(pool, task_id)
            if row is None:
                raise task_not_found(task_id)
            detail = task_detail(row, await read_models.executions(pool, task_id), datetime.now(UTC))
            async with streaming(request) as writer:
                stream = _TaskStream(writer, pool, task_id, position.seq if position else 0)
                if position is not None:
                    stream.durable_id = position.durable_id
                await stream.send(
                    "snapshot", detail.model_dump(mode="json"), position.id if position else None
                )
                if detail.status in read_models.TERMINAL_STATUSES:
                    # A re-run already published but not recorded yet (the read model lags the broker):
                    # it is in the subscription's buffer, and the stream follows it instead of ending.
                    buffered = subscription.pending()
                    if not any(e.type in RESTART_EVENTS for e in buffered):
                        await stream.end(detail.status)
                        return writer.response
                    for event in buffered:
                        if await stream.live_event(event):
                            return writer.response
                await stream.follow(subscription, keepalive)
            return writer.response
    finally:
        broker.unsubscribe(subscription)


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/stream",
        stream_task,
        "Server-sent events: a snapshot, then every event of the task as it happens; with Last-Event-ID,"
        " the events after that one instead of a snapshot",
        "streams",
        produces="text/event-stream",
        role="viewer",
        rate_limited=True,
    ),
]
