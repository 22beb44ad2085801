"""Giving a task its table list, by names or by a `.txt` upload (ext).

The one file the gateway writes: the task's table-list file, atomically, and only while the task is
not running. Names are validated as table identifiers; an upload must be small, named `*.txt`, UTF-8
text, and parse entirely as table names (one per line or comma-separated, `#` comments allowed).
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.task_files import (
    table_list_name_problem,
    table_list_target,
    task_dir,
    write_atomically,
)
from services.api_gateway.envelope import ok
from services.api_gateway.errors import (
    Conflict,
    InvalidParams,
    MissingParams,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from services.api_gateway.keys import POOL, SETTINGS
from services.api_gateway.schemas.names import is_table_name
from services.api_gateway.schemas.requests import TableListRequest
from services.api_gateway.schemas.responses import TableListWritten
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import parse_model, read_json_object, require_task_id, task_not_found

MAX_TABLES = 5000
MAX_PARTS = 20
_SPLIT = re.compile(r"[,\n]")


def parse_table_names(text: str, field: str = "tables") -> list[str]:
    """Names from text (one per line or comma-separated; blank lines and `#` comments skipped), de-duplicated.

    Raises InvalidParams listing (up to 20 of) the entries that are not table names; `field` is the
    request field the errors name.
    """
    names: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        names.extend(part.strip() for part in _SPLIT.split(line) if part.strip())
    bad = [n for n in names if len(n) > 127 or not is_table_name(n)]
    if bad:
        shown = [n[:80] for n in bad[:20]]
        raise InvalidParams(
            f"not table names: {', '.join(shown)}", invalid=[field], extra={"invalid_tables": shown}
        )
    unique = list(dict.fromkeys(names))
    if not unique:
        raise MissingParams("the table list is empty", missing=[field])
    if len(unique) > MAX_TABLES:
        raise InvalidParams(f"at most {MAX_TABLES} tables", invalid=[field])
    return unique


def decode_table_list(content: bytes, field: str = "file", names_field: str = "tables") -> list[str]:
    """The table names in an uploaded or provisioned file: UTF-8 text (a BOM allowed), no NUL bytes.

    Errors name `field` for the file and `names_field` for its entries.
    """
    if b"\x00" in content:
        raise InvalidParams("the file is not text", invalid=[field])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParams("the file is not UTF-8 text", invalid=[field]) from None
    return parse_table_names(text, names_field)


async def _write_table_list(request: web.Request, task_id: str, tables: list[str]) -> web.Response:
    row = await read_models.get_task(request.app[POOL], task_id)
    if row is None:
        raise task_not_found(task_id)
    if row["status"] == "in_progress":
        raise Conflict(
            "the task is running; change its table list after it stops", extra={"task_status": "in_progress"}
        )
    parameters = row["parameters"] if isinstance(row["parameters"], dict) else {}
    file_name = table_list_target(parameters.get("table_list_file"))
    registered = {r["file_name"] for r in await read_models.outputs(request.app[POOL], task_id)}
    if problem := table_list_name_problem(file_name, registered):
        raise Conflict(
            f"the task's table_list_file {file_name!r} cannot be written: {problem}; "
            "create the task with another table_list_file (default table_list.txt)",
            invalid=["table_list_file"],
        )
    directory = task_dir(request.app[SETTINGS].data_root, task_id)
    await asyncio.to_thread(write_atomically, directory, file_name, "\n".join(tables) + "\n")
    data = TableListWritten(task_id=task_id, file_name=file_name, table_count=len(tables), tables=tables)
    return ok(f"table list written: {len(tables)} tables", data.model_dump(mode="json"))


async def set_table_list(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    body = await read_json_object(request)
    if "tables" not in body and "table_list" in body:
        body = {"tables": body.pop("table_list"), **body}
    req = parse_model(TableListRequest, body)
    text = req.tables if isinstance(req.tables, str) else "\n".join(req.tables)
    return await _write_table_list(request, task_id, parse_table_names(text))


async def read_upload(part: BodyPartReader, limit: int) -> bytes:
    """A file part's content, refused (413) past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _first_file(reader: MultipartReader, limit: int) -> bytes | None:
    """The content of the first part that carries a file name (other parts are skipped).

    The whole body is read to its closing boundary before anything is used: aiohttp hands out a
    part's bytes up to the end of the stream even when the boundary never comes, so a truncated
    upload would otherwise be taken as complete (the parser raises ValueError on the missing end).
    """
    content: bytes | None = None
    parts = skipped = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
            raise InvalidParams(
                f"at most {MAX_PARTS} form fields, none of them nested multipart", invalid=["body"]
            )
        if content is not None or not part.filename:
            # Read (and count) rather than release: other fields are bounded like the file itself.
            while chunk := await part.read_chunk(64 * 1024):
                skipped += len(chunk)
                if skipped > limit:
                    raise PayloadTooLarge(f"the form's other fields are larger than {limit} bytes")
            continue
        if not part.filename.lower().endswith(".txt"):
            raise InvalidParams("the file must be a .txt file", invalid=["file"])
        content = await read_upload(part, limit)
    if not reader.at_eof():
        raise ValueError("multipart body without its closing boundary")
    return content


async def upload_table_list(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    limit = request.app[SETTINGS].max_upload_bytes
    if not request.content_type.startswith("multipart/"):
        raise UnsupportedMediaType(
            "upload as multipart/form-data with a `file` field", invalid=["content_type"]
        )
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise PayloadTooLarge(f"the upload is larger than {limit} bytes")
    try:
        content = await _first_file(await request.multipart(), limit)
    except (ValueError, HttpProcessingError):
        # aiohttp's multipart parser: no or bad boundary, bad part headers, body ends early or
        # without its closing boundary.
        raise InvalidParams(
            "malformed multipart/form-data body (truncated, or no closing boundary)", invalid=["body"]
        ) from None
    if content is None:
        raise MissingParams("no file in the upload (form field `file`)", missing=["file"])
    return await _write_table_list(request, task_id, decode_table_list(content))


ROUTES = [
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/table-list",
        set_table_list,
        "Give a task its table list by names (ext)",
        "files",
        body=TableListRequest,
        response=TableListWritten,
        errors=(400, 401, 404, 409, 413, 415),
        role="operator",
    ),
    RouteSpec(
        "POST",
        f"{DATA_PIPELINE}/tasks/{{task_id}}/upload-table-list",
        upload_table_list,
        "Give a task its table list as a .txt upload (ext)",
        "files",
        body_kind="multipart",
        response=TableListWritten,
        errors=(400, 401, 404, 409, 413, 415),
        role="operator",
    ),
]
