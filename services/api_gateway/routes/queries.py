"""The earlier implementation's query routes (ext): POST /tasks/query and POST /tasks/{id}/logs/query,
filters, sorting and page numbers in the body. GET /tasks and GET /tasks/{id}/logs with their keyset
cursors remain the recommended way to page (nothing skipped or repeated while tasks are created).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from aiohttp import web

from services.api_gateway.adapters import paged_queries, read_models
from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams
from services.api_gateway.keys import POOL, SETTINGS
from services.api_gateway.schemas.earlier_routes import (
    LogQueryPage,
    LogQueryRequest,
    Pagination,
    TaskQueryPage,
    TaskQueryRequest,
)
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.task_views import log_line_from_row, task_summary
from services.api_gateway.validation import parse_model, read_json_object, require_task_id, task_not_found
from shared.steps import parse_step


def pagination(page: int, page_size: int, total: int) -> Pagination:
    pages = math.ceil(total / page_size) if total else 0
    return Pagination(
        page=page,
        page_size=page_size,
        total=total,
        total_pages=pages,
        has_next=page < pages,
        has_prev=page > 1,
    )


async def query_tasks(request: web.Request) -> web.Response:
    body = await read_json_object(request, optional=True)
    req = parse_model(TaskQueryRequest, body)
    if req.created_time_start and req.created_time_end and req.created_time_start > req.created_time_end:
        raise InvalidParams(
            "created_time_start is after created_time_end", invalid=["created_time_start", "created_time_end"]
        )
    query = paged_queries.TaskQuery(
        filters=read_models.TaskFilters(status=req.status, created_by=req.created_by, db_name=req.db_name),
        task_name=req.task_name,
        created_from=req.created_time_start,
        created_to=req.created_time_end,
    )
    rows, total = await paged_queries.query_tasks(
        request.app[POOL],
        query,
        sort_by=req.sort_by,
        descending=req.sort_order == "desc",
        offset=(req.page - 1) * req.page_size,
        limit=req.page_size,
    )
    now = datetime.now(UTC)
    data = TaskQueryPage(
        tasks=[task_summary(r, now) for r in rows],
        total=total,
        pagination=pagination(req.page, req.page_size, total),
        sort_by=req.sort_by,
        sort_order=req.sort_order,
    )
    return ok(f"{len(rows)} of {total} tasks", data.model_dump(mode="json"))


async def query_logs(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    pool = request.app[POOL]
    if await read_models.task_status(pool, task_id) is None:
        raise task_not_found(task_id)
    body = await read_json_object(request, optional=True)
    req = parse_model(LogQueryRequest, body)
    if req.start_time and req.end_time and req.start_time > req.end_time:
        raise InvalidParams("start_time is after end_time", invalid=["start_time", "end_time"])
    step = None
    if req.step_name:
        try:
            step = parse_step(req.step_name).value
        except ValueError:
            raise InvalidParams(f"unknown step {req.step_name!r}", invalid=["step_name"]) from None
    query = paged_queries.LogQuery(
        filters=read_models.LogFilters(
            min_level=read_models.LEVEL_NUMBERS[req.min_level] if req.min_level else None,
            step=step,
            text=req.keyword or None,
            since=req.start_time,
            until=req.end_time,
        ),
        level=req.level,
        logger=req.logger_name or None,
    )
    rows = await paged_queries.query_logs(
        pool,
        task_id,
        query,
        descending=req.sort_order == "desc",
        offset=(req.page - 1) * req.page_size,
        limit=req.page_size,
    )
    total, exact = await paged_queries.count_logs(
        pool, task_id, query, cap=request.app[SETTINGS].log_count_limit
    )
    data = LogQueryPage(
        logs=[log_line_from_row(r) for r in rows],
        total=total,
        total_exact=exact,
        pagination=pagination(req.page, req.page_size, total),
    )
    return ok(f"{len(rows)} log lines", data.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/query",
        query_tasks,
        "Query tasks: filters, sorting and page numbers in the body (ext; GET /tasks pages by cursor)",
        "tasks",
        body=TaskQueryRequest,
        body_required=False,
        response=TaskQueryPage,
        errors=(400, 401, 413, 415),
        role="viewer",
    ),
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/logs/query",
        query_logs,
        "Query a task's log lines: level, keyword, time range, page numbers in the body (ext)",
        "logs",
        body=LogQueryRequest,
        body_required=False,
        response=LogQueryPage,
        errors=(400, 401, 404, 413, 415),
        role="viewer",
    ),
]
