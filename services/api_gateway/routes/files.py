"""Output files: the registered list, and downloads of registered files from the task's own directory.

A client's file name is checked by pattern first (400 when it could never name a file: separators,
`..`, a leading dot), then resolved and required to sit directly in `<data_root>/<task_id>/`; every
other miss is the same 404, so a request never tells whether something exists outside.
"""

from __future__ import annotations

import asyncio
import mimetypes
from urllib.parse import quote

from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.task_files import (
    LOG_FILE,
    is_safe_file_name,
    resolve_task_file,
    table_list_target,
)
from services.api_gateway.envelope import ok
from services.api_gateway.errors import Forbidden, InvalidParams, NotFound, PayloadTooLarge
from services.api_gateway.keys import POOL, SETTINGS
from services.api_gateway.output_files import listed_on_disk
from services.api_gateway.schemas.responses import FileList
from services.api_gateway.spec import DATA_PIPELINE, FILE_TYPES, RouteSpec
from services.api_gateway.task_views import file_view
from services.api_gateway.validation import require_task_id, task_not_found


async def list_files(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    pool = request.app[POOL]
    task = await read_models.get_task(pool, task_id)
    if task is None:
        raise task_not_found(task_id)
    rows = await read_models.outputs(pool, task_id)
    base = f"{DATA_PIPELINE}/tasks/{task_id}/files/download/"
    files = [file_view(r, base + quote(r["file_name"])) for r in rows]
    parameters = task["parameters"] if isinstance(task["parameters"], dict) else {}
    table_list = table_list_target(parameters.get("table_list_file"))
    files = await asyncio.to_thread(
        listed_on_disk, request.app[SETTINGS].data_root, task_id, files, table_list, base
    )
    return ok(f"{len(files)} files", FileList(files=files, total=len(files)).model_dump(mode="json"))


def content_disposition(file_name: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


async def download_file(request: web.Request) -> web.StreamResponse:
    task_id = require_task_id(request)
    settings = request.app[SETTINGS]
    if not settings.enable_file_download:
        raise Forbidden(
            "file downloads are disabled on this gateway (DP_ENABLE_FILE_DOWNLOAD=false); "
            "GET /tasks/{task_id}/files still lists them",
            extra={"reason": "downloads_disabled"},
        )
    file_name = request.match_info.get("filename", "")
    if not is_safe_file_name(file_name):
        raise InvalidParams("invalid file name: a bare name without separators or '..'", invalid=["filename"])
    pool = request.app[POOL]
    task = await read_models.get_task(pool, task_id)
    if task is None:
        raise task_not_found(task_id)
    # Only what the pipeline registered as a downloadable output, the task's log and its table list:
    # anything else lying in the directory (a backup, a stray file) is the same 404 as a missing one.
    parameters = task["parameters"] if isinstance(task["parameters"], dict) else {}
    if file_name in (LOG_FILE, table_list_target(parameters.get("table_list_file"))):
        allowed = True
    else:
        allowed = await read_models.output_downloadable(pool, task_id, file_name) is True
    path = resolve_task_file(settings.data_root, task_id, file_name) if allowed else None
    if path is None:
        raise NotFound(f"file not found: {file_name}")
    size = path.stat().st_size
    if size > settings.max_download_bytes:
        raise PayloadTooLarge(
            f"{file_name} has {size} bytes, more than the download limit of {settings.max_download_bytes}"
            " bytes (DP_MAX_DOWNLOAD_BYTES)",
            extra={"file_size": size, "max_download_bytes": settings.max_download_bytes},
        )
    content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": content_disposition(file_name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


ROUTES = [
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/files",
        list_files,
        "Registered output files",
        "files",
        response=FileList,
        role="viewer",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/files/download/{{filename}}",
        download_file,
        "Download an output file (attachment)",
        "files",
        produces=FILE_TYPES,
        errors=(400, 401, 403, 404, 413),  # 403 downloads disabled, 413 over the size limit
        role="operator",
    ),
    RouteSpec(
        "GET",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/files/{{filename}}",
        download_file,
        "Download an output file (ext; same as /files/download/{filename})",
        "files",
        produces=FILE_TYPES,
        errors=(400, 401, 403, 404, 413),  # 403 downloads disabled, 413 over the size limit
        name="download_file_short",
        role="operator",
    ),
]
