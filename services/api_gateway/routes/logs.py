"""A task's log lines and event history from the read models, with keyset pagination.

`GET /tasks/{id}/logs?follow=true` (or with `Accept: text/event-stream`) streams instead; see streams.py.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.cursors import decode_id_cursor, id_cursor
from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams
from services.api_gateway.keys import POOL, SETTINGS
from services.api_gateway.routes.streams import follow_logs
from services.api_gateway.schemas.query_strings import EventQuery, LogQuery
from services.api_gateway.schemas.requests import BIGINT_MAX
from services.api_gateway.schemas.responses import EventPage, LogPage
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.sse import wants_event_stream
from services.api_gateway.task_views import event_from_row, log_line_from_row
from services.api_gateway.validation import parse_query, require_task_id, task_not_found
from shared.steps import parse_step
from shared.task_log import TASK_LOG_STEPS


def log_filters(query: LogQuery) -> read_models.LogFilters:
    step = None
    if query.step:
        try:
            step = parse_step(query.step).value
        except ValueError:
            step = query.step.strip().lower()
            if step not in TASK_LOG_STEPS:  # the task-level lines' names (workflow_start, system_check...)
                raise InvalidParams(f"unknown step {query.step!r}", invalid=["step"]) from None
    if query.since and query.until and query.since > query.until:
        raise InvalidParams("since is after until", invalid=["since", "until"])
    return read_models.LogFilters(
        min_level=read_models.LEVEL_NUMBERS[query.level] if query.level else None,
        step=step,
        text=query.q or None,
        since=query.since,
        until=query.until,
    )


def _filters_key(task_id: str, filters: read_models.LogFilters) -> str:
    """Names the filtered list, so a count carried in a cursor is only reused for the same list."""
    return hashlib.sha256(repr((task_id, filters)).encode()).hexdigest()[:16]


def _carried_total(query: LogQuery, key: str) -> tuple[int, bool] | None:
    """The total that the first page counted, carried in the cursor (None: count now)."""
    if not query.cursor:
        return None
    data = decode_id_cursor("logs", query.cursor)
    total, exact = data.get("t"), data.get("x")
    if data.get("f") != key or not isinstance(total, int) or isinstance(total, bool) or total < 0:
        return None
    return total, exact is True


def log_position(query: LogQuery, last_event_id: str | None = None) -> tuple[int | None, bool, bool]:
    """(after id, descending, tail) from `cursor`, else `after`, else a stream's Last-Event-ID.

    `tail`: no order, cursor or after given, so the page is the newest `limit` lines, shown in time
    order (the earlier implementation's `logs?limit=N`); its cursor keeps paging back to older lines.
    """
    if query.cursor:
        data = decode_id_cursor("logs", query.cursor)
        return data["v"], bool(data.get("d")), bool(data.get("r"))
    if query.after is not None:
        return query.after, query.order == "desc", False
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit():
        if len(last_event_id) > 19 or int(last_event_id) > BIGINT_MAX:
            raise InvalidParams("Last-Event-ID is not a log id", invalid=["Last-Event-ID"])
        return int(last_event_id), False, False
    if query.order is None:
        return None, True, True
    return None, query.order == "desc", False


async def get_logs(request: web.Request) -> web.StreamResponse:
    task_id = require_task_id(request)
    query = parse_query(LogQuery, request)
    filters = log_filters(query)
    follow = query.follow or wants_event_stream(request)
    after_id, descending, tail = log_position(query, request.headers.get("Last-Event-ID") if follow else None)
    pool = request.app[POOL]
    if await read_models.task_status(pool, task_id) is None:
        raise task_not_found(task_id)
    if follow:
        return await follow_logs(request, task_id, filters, after_id)
    rows = await read_models.logs(
        pool, task_id, filters, after_id=after_id, limit=query.limit, descending=descending
    )
    page = rows[: query.limit]
    more = len(rows) > query.limit
    # Counting is paid once per listing, and bounded: on the first page (or with `after`), capped at
    # DP_LOG_COUNT_LIMIT matches; later pages reuse the count their cursor carries.
    key = _filters_key(task_id, filters)
    counted = _carried_total(query, key)
    if counted is None:
        counted = await read_models.count_logs(
            pool, task_id, filters, cap=request.app[SETTINGS].log_count_limit
        )
    total, exact = counted
    next_cursor = (
        id_cursor("logs", page[-1]["id"], d=descending, r=tail, t=total, x=exact, f=key) if more else None
    )
    if tail:
        page = page[::-1]
    data = LogPage(
        logs=[log_line_from_row(r) for r in page], next_cursor=next_cursor, total=total, total_exact=exact
    )
    return ok(f"{len(page)} log lines", data.model_dump(mode="json"))


async def get_events(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    query = parse_query(EventQuery, request)
    after = decode_id_cursor("events", query.cursor)["v"] if query.cursor else query.after
    pool = request.app[POOL]
    if await read_models.task_status(pool, task_id) is None and not await read_models.has_events(
        pool, task_id
    ):
        raise task_not_found(task_id)
    types = [t.strip() for t in query.type.split(",") if t.strip()] if query.type else []
    rows = await read_models.events(pool, task_id, after_seq=after, limit=query.limit, types=types)
    page = rows[: query.limit]
    next_cursor = id_cursor("events", page[-1]["seq"]) if len(rows) > query.limit else None
    data = EventPage(events=[event_from_row(r) for r in page], next_cursor=next_cursor)
    return ok(f"{len(page)} events", data.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/logs",
        get_logs,
        "Log lines (filters, keyset pages); ?follow=true or Accept: text/event-stream streams them live",
        "logs",
        query=LogQuery,
        response=LogPage,
        also_streams=True,
        # Following draws from the rate limit and holds a stream slot (429 / 503 past them).
        errors=(400, 401, 404, 429, 503),
        role="viewer",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/events",
        get_events,
        "The task's event history (event store), by sequence number",
        "logs",
        query=EventQuery,
        response=EventPage,
        role="viewer",
    ),
]
