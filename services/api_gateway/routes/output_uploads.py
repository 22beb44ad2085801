"""Uploading an edited output (ext, issue #14 item 4): `POST /tasks/{id}/files`, multipart `file` and
`overwrite_mode` (`backup`, the default; `replace`; `rename`; `skip`) — the earlier guide's "download,
edit, re-upload, then run the next step".

What may be written, and why it is safe:
- only a file the pipeline registered as an output of this task, by its exact name (a bare name,
  checked like every client file name), and only of an editable text kind (.ddl, .md, .json, .txt,
  .sql): nothing else in the task directory, and no new kind of file, can be created;
- the content is checked like every upload: size limit (413), UTF-8 text without NUL bytes, JSON that
  parses for .json, and for a question/SQL pair file the shape step 3 reads;
- never while the task runs (409); the table list has its own routes (/upload-table-list);
- the written file (and a backup) is registered again (OutputRegistered), so the list shows its new
  size and hash, it downloads, and the later steps, which read their inputs from the task directory
  by name, use it.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.task_files import (
    is_safe_file_name,
    resolve_task_file,
    table_list_target,
    task_dir,
)
from services.api_gateway.envelope import ok
from services.api_gateway.errors import (
    UNAVAILABLE_ERRORS,
    Conflict,
    InvalidParams,
    MissingParams,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from services.api_gateway.keys import BROKER, POOL, SETTINGS
from services.api_gateway.output_files import (
    EDITABLE_SUFFIXES,
    OVERWRITE_MODES,
    check_content,
    read_form,
    store_upload,
)
from services.api_gateway.schemas.earlier_routes import BackupInfo, OutputUploaded, UploadedFile
from services.api_gateway.schemas.responses import format_size
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import require_task_id, task_not_found
from shared.events import LogEmitted, OutputRegistered
from shared.steps import StepName

# The broker did not take the registration: the file is written, the caller may upload it again.
_NOT_REGISTERED: tuple[type[BaseException], ...] = (TimeoutError, *UNAVAILABLE_ERRORS)


async def _register(
    request: web.Request,
    task_id: str,
    row: Any,
    name: str,
    text: str,
    *,
    primary: bool,
    file_type: str,
    description: str | None,
) -> None:
    data = text.encode("utf-8")
    step = row["step_name"]
    event = OutputRegistered(
        step=StepName(step) if step in {s.value for s in StepName} else None,
        execution_id=row["execution_id"],
        file_name=name,
        file_type=file_type,
        relative_path=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        is_primary=primary,
        description=description,
    )
    broker = request.app[BROKER]
    await asyncio.wait_for(broker.publisher.event(task_id, event), timeout=broker.publish_timeout)


async def upload_output(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    if not request.content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            "upload as multipart/form-data with a `file` field", invalid=["content_type"]
        )
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise PayloadTooLarge(f"the upload is larger than {limit} bytes")
    pool = request.app[POOL]
    task = await read_models.get_task(pool, task_id)
    if task is None:
        raise task_not_found(task_id)
    try:
        file_name, content, mode = await read_form(await request.multipart(), limit)
    except (ValueError, HttpProcessingError):
        raise InvalidParams(
            "malformed multipart/form-data body (truncated, or no closing boundary)", invalid=["body"]
        ) from None
    if content is None or file_name is None:
        raise MissingParams("no file in the upload (form field `file`)", missing=["file"])
    mode = mode or "backup"
    if mode not in OVERWRITE_MODES:
        raise InvalidParams(
            f"overwrite_mode must be one of {', '.join(OVERWRITE_MODES)}", invalid=["overwrite_mode"]
        )
    if not is_safe_file_name(file_name):
        raise InvalidParams("the file name must be a bare name without separators or '..'", invalid=["file"])
    parameters = task["parameters"] if isinstance(task["parameters"], dict) else {}
    if file_name == table_list_target(parameters.get("table_list_file")):
        raise InvalidParams(
            f"{file_name} is the task's table list: give it with POST /tasks/{{task_id}}/upload-table-list",
            invalid=["file"],
        )
    outputs = await read_models.outputs(pool, task_id)
    row = next((r for r in outputs if r["file_name"] == file_name), None)
    if row is None:
        raise NotFound(
            f"{file_name} is not an output of this task: only the files GET /tasks/{{task_id}}/files lists "
            "can be replaced by an edited upload",
            extra={"file": file_name},
        )
    if not file_name.lower().endswith(EDITABLE_SUFFIXES):
        raise InvalidParams(
            f"only text outputs ({', '.join(EDITABLE_SUFFIXES)}) can be replaced by an upload",
            invalid=["file"],
        )
    if task["status"] == "in_progress":
        raise Conflict("the task is running; upload after it stops", extra={"task_status": "in_progress"})
    text = check_content(file_name, content)
    directory = task_dir(settings.data_root, task_id)
    taken = {r["file_name"] for r in outputs}
    stored, backup, written = await asyncio.to_thread(store_upload, directory, file_name, text, mode, taken)
    now = datetime.now(UTC)
    try:
        if backup is not None and (path := resolve_task_file(settings.data_root, task_id, backup[0])):
            backup_text = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
            await _register(
                request,
                task_id,
                row,
                backup[0],
                backup_text,
                primary=False,
                file_type="backup",
                description=f"{file_name} before the upload of {now:%Y-%m-%d %H:%M:%S} UTC",
            )
        if written:
            renamed = stored != file_name
            await _register(
                request,
                task_id,
                row,
                stored,
                text,
                primary=row["is_primary"] and not renamed,
                file_type=row["file_type"],
                description=f"upload kept beside {file_name}" if renamed else row["description"],
            )
            message = (
                f"{file_name} replaced by an upload ({mode})"
                if not renamed
                else f"{file_name} uploaded as {stored}"
            )
            broker = request.app[BROKER]
            await asyncio.wait_for(
                broker.publisher.event(
                    task_id, LogEmitted(level="INFO", message=message, module="api_gateway")
                ),
                timeout=broker.publish_timeout,
            )
    except _NOT_REGISTERED as exc:
        raise ServiceUnavailable(
            "the file is written but could not be registered (the message broker did not confirm); "
            "upload it again",
            extra={"retryable": True},
        ) from exc
    size = len(text.encode("utf-8"))
    data = OutputUploaded(
        task_id=task_id,
        uploaded_file=UploadedFile(
            filename=file_name,
            overwrite_mode=mode,
            size=size,
            size_formatted=format_size(size),
            uploaded_at=now,
            stored_as=stored,
        ),
        backup_info=BackupInfo(
            had_existing_file=True, backup_filename=backup[0], backup_version=backup[1], backup_created_at=now
        )
        if backup
        else None,
        written=written,
    )
    text_out = "file uploaded" if written else f"{file_name} exists; skipped (overwrite_mode skip)"
    return ok(text_out, data.model_dump(mode="json"))


UPLOAD_FORM: dict[str, Any] = {
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "The edited output under the name GET /tasks/{task_id}/files lists "
                f"({', '.join(EDITABLE_SUFFIXES)}; UTF-8 text; JSON for .json).",
            },
            "overwrite_mode": {
                "type": "string",
                "enum": list(OVERWRITE_MODES),
                "default": "backup",
                "description": "backup: keep the current file as <name>_bak<N> (no step reads it), then "
                "replace it; replace: replace it; rename: keep it and store the upload as <stem>_<N> of "
                "the same kind (the steps read both); skip: write nothing when the file exists.",
            },
        },
    },
    "encoding": {
        "file": {"contentType": "application/octet-stream"},
        "overwrite_mode": {"contentType": "text/plain"},
    },
}


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/files",
        upload_output,
        "Replace an output with an edited upload (ext): the later steps read the uploaded file",
        "files",
        body_kind="multipart",
        form_schema=UPLOAD_FORM,
        response=OutputUploaded,
        errors=(400, 401, 404, 409, 413, 415, 503),
        role="operator",
    ),
]
