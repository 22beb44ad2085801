"""Live views over server-sent events: a task's log lines (`/logs?follow`) here, and what they share with
its every event (`/stream`, routes/task_stream.py).

Each stream subscribes (exclusive auto-delete queue) *before* it reads the database, so an event
published while the backlog or snapshot is being read is not lost; anything seen twice is dropped by
`event_id`. Streams send keep-alive comments when idle and end after `task_finished`/`task_deleted`
(or at once when the task is already finished), on gateway shutdown, or when the client goes away.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.broker import EventSubscription, GatewayBroker
from services.api_gateway.auth import charge_rate_limit, stream_slot
from services.api_gateway.keys import BROKER, METRICS, POOL, SETTINGS
from services.api_gateway.schemas.responses import LogLine
from services.api_gateway.sse import SseWriter
from services.api_gateway.task_views import (
    log_line_from_event,
    log_line_from_row,
)
from shared.logging import get_logger
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets
from shared.task_log import DERIVING_EVENTS

END_EVENTS = ("task_finished", "task_deleted")
BACKLOG_PAGE = 500
_SEEN_LIMIT = 100_000


class Seen:
    """Event ids already sent (bounded: the oldest are forgotten first)."""

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}

    def add(self, event_id: str) -> bool:
        """False if `event_id` was already sent."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > _SEEN_LIMIT:
            self._ids.pop(next(iter(self._ids)))
        return True

    def seen(self, event_id: str) -> bool:
        return event_id in self._ids


def log_matches(line: LogLine, filters: read_models.LogFilters) -> bool:
    if filters.min_level is not None and read_models.LEVEL_NUMBERS.get(line.level, 20) < filters.min_level:
        return False
    if filters.step and line.step_name != filters.step:
        return False
    if filters.text and filters.text.lower() not in line.message.lower():
        return False
    if filters.since and line.timestamp < filters.since:
        return False
    return not (filters.until and line.timestamp > filters.until)


async def _pump(
    request: web.Request,
    subscription: EventSubscription,
    writer: SseWriter,
    on_event: Callable[[EventEnvelope], object],
) -> None:
    """Forward live events via `on_event` until it returns "end", the subscription closes, or the client leaves."""
    keepalive = request.app[SETTINGS].sse_keepalive_seconds
    while True:
        try:
            event = await subscription.get(keepalive)
        except TimeoutError:
            await writer.comment("keep-alive")
            continue
        if event is None:
            reason = "overflow" if subscription.overflowed else "shutdown"
            await writer.send("end", {"reason": reason})
            return
        if await on_event(event) == "end":  # type: ignore[misc]
            return


@contextlib.asynccontextmanager
async def streaming(request: web.Request) -> AsyncIterator[SseWriter]:
    """An open SSE response for the body of the block; a client leaving or a failure ends it cleanly."""
    metrics = request.app[METRICS]
    writer = await SseWriter.open(request)
    metrics.streams.inc()
    try:
        yield writer
    except ConnectionError:
        pass  # the client went away
    except Exception as exc:
        await _stream_failed(writer, exc)
    finally:
        metrics.streams.dec()
    await writer.close()


async def follow_logs(
    request: web.Request, task_id: str, filters: read_models.LogFilters, after_id: int | None
) -> web.StreamResponse:
    broker, pool = request.app[BROKER], request.app[POOL]
    charge_rate_limit(request)
    with stream_slot(request):
        return await _follow_logs(request, broker, pool, task_id, filters, after_id)


async def _follow_logs(
    request: web.Request,
    broker: GatewayBroker,
    pool: asyncpg.Pool,
    task_id: str,
    filters: read_models.LogFilters,
    after_id: int | None,
) -> web.StreamResponse:
    # Task facts too: they imply the task-level lines (workflow_start, workflow_complete, system_check...).
    subscription = broker.subscribe(task_id, ["log_emitted", *DERIVING_EVENTS, *END_EVENTS])
    try:
        async with subscription, streaming(request) as writer:
            seen = Seen()
            while True:
                rows = await read_models.logs(pool, task_id, filters, after_id=after_id, limit=BACKLOG_PAGE)
                for row in rows[:BACKLOG_PAGE]:
                    line = log_line_from_row(row)
                    seen.add(line.event_id)
                    await writer.send("log", line.model_dump(mode="json"), event_id=line.id)
                    after_id = row["id"]
                if len(rows) <= BACKLOG_PAGE:
                    break
            status = await read_models.task_status(pool, task_id)
            if status is None or status in read_models.TERMINAL_STATUSES:
                await writer.send("end", {"task_id": task_id, "status": status or "deleted"})
                return writer.response

            async def send_line(event: EventEnvelope) -> bool:
                line = log_line_from_event(event)
                if line is None or not log_matches(line, filters) or not seen.add(line.event_id):
                    return False
                await writer.send("log", line.model_dump(mode="json"))
                return True

            async def on_event(event: EventEnvelope) -> str | None:
                if event.type in END_EVENTS:
                    for pending in subscription.pending():
                        await send_line(pending)
                    await send_line(event)  # task_finished's workflow_complete / workflow_error line
                    await writer.send("end", {"task_id": task_id, "status": end_status(event)})
                    return "end"
                await send_line(event)
                return None

            await _pump(request, subscription, writer, on_event)
        return writer.response
    finally:
        broker.unsubscribe(subscription)


async def _stream_failed(writer: SseWriter, exc: Exception) -> None:
    """Headers are sent, so no error envelope is possible: log, tell the client in-band, and end."""
    get_logger().exception("event stream failed", error=mask_secrets(repr(exc)))
    with contextlib.suppress(Exception):
        await writer.send("error", {"reason": "internal error; reconnect to resume"})


def end_status(event: EventEnvelope) -> str:
    return getattr(event.payload, "status", None) or (
        "deleted" if event.type == "task_deleted" else "finished"
    )
