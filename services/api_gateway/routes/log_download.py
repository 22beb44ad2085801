"""`GET /tasks/{id}/logs/download`: the task's whole log as a text file, in the format of its
data_pipeline.log, optionally filtered like the log route.

Streamed page by page from the log table, each page rendered as text by PostgreSQL
(adapters/log_export.py), so a million-line log costs one page of memory. Headers go out before the first page is read: a failure after that cannot become an
error status, so the connection is cut without the closing chunk and the client sees a truncated
transfer rather than a file that looks complete.
"""

from __future__ import annotations

from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.log_export import log_pages
from services.api_gateway.keys import POOL
from services.api_gateway.routes.files import content_disposition
from services.api_gateway.routes.logs import log_filters
from services.api_gateway.schemas.query_strings import LogFilterQuery, LogQuery
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import parse_query, require_task_id, task_not_found
from shared.logging import get_logger
from shared.secrets import mask_secrets


def download_name(task_id: str, filtered: bool) -> str:
    return f"{task_id}_data_pipeline{'_filtered' if filtered else ''}.log"


async def download_logs(request: web.Request) -> web.StreamResponse:
    task_id = require_task_id(request)
    query = parse_query(LogFilterQuery, request)
    filters = log_filters(LogQuery(**query.model_dump()))
    pool = request.app[POOL]
    if await read_models.task_status(pool, task_id) is None:
        raise task_not_found(task_id)
    filtered = filters != read_models.LogFilters()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": content_disposition(download_name(task_id, filtered)),
            "Cache-Control": "no-store",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for page in log_pages(pool, task_id, filters):
            await response.write(mask_secrets(page.text).encode("utf-8"))
    except ConnectionError:
        return response  # the client went away
    except Exception as exc:
        get_logger().exception("log download failed", task_id=task_id, error=mask_secrets(repr(exc)))
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/logs/download",
        download_logs,
        "The task's whole log as a text file (data_pipeline.log's format), streamed; the log route's filters",
        "logs",
        query=LogFilterQuery,
        produces="text/plain",
        role="viewer",
        rate_limited=True,
    ),
]
