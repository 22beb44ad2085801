"""A new task's table list, given with the create: a file part of a multipart POST /tasks, or a file
under the operator's DP_TABLE_LISTS_DIR named in JSON `table_list_file`.

Either way the gateway reads the file with the upload route's checks (routes/table_list.py: size,
`.txt` name, UTF-8 text, every entry a table name), and writes it into the new task's directory
before the create command is published, so step 1 finds it. A task is never created without a
readable table list: every problem is a 400 with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from services.api_gateway.adapters.task_files import (
    is_safe_file_name,
    table_list_name_problem,
    task_dir,
    write_atomically,
)
from services.api_gateway.errors import InvalidParams, MissingParams, PayloadTooLarge, UnsupportedMediaType
from services.api_gateway.routes.table_list import MAX_PARTS, decode_table_list, read_upload
from services.api_gateway.schemas.intake import RELATIVE_PATH_PATTERN
from services.api_gateway.validation import refuse_nul

FIELD = "table_list_file"
# The request pattern is the first of two locks: the resolved path is checked against the directory.
_RELATIVE_PATH = re.compile(RELATIVE_PATH_PATTERN)


@dataclass(frozen=True)
class TableListFile:
    """A checked table list on its way into a task directory."""

    file_name: str  # the bare name it gets in the task directory (TaskParameters.table_list_file)
    tables: list[str]
    source: str  # "upload", or its path under DP_TABLE_LISTS_DIR


def _checked_name(name: str, what: str) -> str:
    if not is_safe_file_name(name):
        raise InvalidParams(
            f"{what} {name[:100]!r} is not a plain file name (letters, digits, `._-+() `, no path)",
            invalid=[FIELD],
        )
    if problem := table_list_name_problem(name, ()):
        raise InvalidParams(f"{what} {name!r}: {problem}", invalid=[FIELD])
    return name


# ---- multipart create -----------------------------------------------------------------------------


async def _text_part(part: BodyPartReader, limit: int, name: str) -> str:
    raw = await read_upload(part, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParams(f"form field `{name}` is not UTF-8 text", invalid=[name]) from None


async def read_create_form(request: web.Request, limit: int) -> tuple[dict[str, Any], TableListFile]:
    """The create body `{task_type, parameters}` and the table list of a multipart POST /tasks.

    Parts: `parameters` (the JSON object a JSON create sends as `parameters`), `task_type` (optional
    text), and the `table_list_file` file part. The file and each text part are bounded by
    DP_MAX_UPLOAD_BYTES; the whole body by DP_MAX_BODY_BYTES (aiohttp).
    """
    if request.content_length is not None and request.content_length > 2 * limit + 64 * 1024:
        raise PayloadTooLarge(f"the form is larger than its parts may be ({limit} bytes each)")
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    try:
        reader = await request.multipart()
        parts = 0
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
                raise InvalidParams(
                    f"at most {MAX_PARTS} form fields, none of them nested multipart", invalid=["body"]
                )
            name = part.name or ""
            if name == FIELD:
                if upload is not None:
                    raise InvalidParams("one table_list_file part only", invalid=[FIELD])
                if not part.filename:
                    raise InvalidParams(
                        "table_list_file must be a file part (Content-Disposition with a filename)",
                        invalid=[FIELD],
                    )
                file_name = _checked_name(part.filename, "file name")
                upload = (file_name, await read_upload(part, limit))
            elif name in ("parameters", "task_type"):
                if name in fields:
                    raise InvalidParams(f"form field `{name}` given twice", invalid=[name])
                fields[name] = await _text_part(part, limit, name)
            else:
                raise InvalidParams(
                    f"unexpected form field {name[:50]!r}: send parameters, task_type and table_list_file",
                    invalid=[name[:50] or "body"],
                )
        if not reader.at_eof():
            raise ValueError("multipart body without its closing boundary")
    except (ValueError, HttpProcessingError):
        raise InvalidParams(
            "malformed multipart/form-data body (truncated, or no closing boundary)", invalid=["body"]
        ) from None
    if "parameters" not in fields:
        raise MissingParams("form field `parameters` (a JSON object) is missing", missing=["parameters"])
    try:
        parameters = json.loads(fields["parameters"])
    except ValueError as exc:
        raise InvalidParams(f"form field `parameters` is not JSON: {exc}", invalid=["parameters"]) from None
    if not isinstance(parameters, dict):
        raise InvalidParams("form field `parameters` must be a JSON object", invalid=["parameters"])
    refuse_nul(parameters)
    if upload is None:
        raise MissingParams("no table_list_file file part in the form", missing=[FIELD])
    if parameters.get(FIELD) is not None or parameters.get("table_list") is not None:
        raise InvalidParams(
            "the form carries the table list as its file part: leave table_list_file and table_list "
            "out of `parameters`",
            invalid=[FIELD, "table_list"],
        )
    file_name, content = upload
    tables = decode_table_list(content, FIELD, FIELD)
    body: dict[str, Any] = {"parameters": {**parameters, FIELD: file_name}}
    if "task_type" in fields:
        body["task_type"] = fields["task_type"].strip()
    return body, TableListFile(file_name=file_name, tables=tables, source="upload")


def is_multipart(request: web.Request) -> bool:
    return request.content_type.startswith("multipart/")


def require_form_data(request: web.Request) -> None:
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "send JSON, or multipart/form-data with parameters and a table_list_file part",
            invalid=["content_type"],
        )


# ---- DP_TABLE_LISTS_DIR ---------------------------------------------------------------------------


def from_lists_dir(root: Path | None, relative: str, limit: int) -> TableListFile:
    """The file `relative` names under the operator's directory `root`, checked like an upload.

    Confinement: the name must be relative with plain segments (no `..`, no leading `/` or dot); the
    path with every link resolved must still lie inside the resolved `root`; the last component is
    opened without following a link (a link swapped in after the check fails).
    """
    if root is None:
        raise InvalidParams(
            "table_list_file names a file in the server's table-list directory, and DP_TABLE_LISTS_DIR is "
            "not set on this server: upload the file with the create (multipart/form-data part "
            "table_list_file) or give table_list",
            invalid=[FIELD],
        )
    if (
        not _RELATIVE_PATH.fullmatch(relative)
        or relative.startswith("/")
        or any(seg in ("", ".", "..") for seg in relative.split("/"))
    ):
        raise InvalidParams(
            f"table_list_file {relative[:200]!r} must be a relative path inside DP_TABLE_LISTS_DIR "
            "(no absolute path, no `..`, no hidden names)",
            invalid=[FIELD],
        )
    base = root.resolve()
    not_found = InvalidParams(
        f"table_list_file {relative!r}: no such readable file in DP_TABLE_LISTS_DIR", invalid=[FIELD]
    )
    try:
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        raise not_found from None
    if not target.is_relative_to(base) or target == base:
        # A link that leads out of the directory: said as plainly as a missing file, outside is not ours.
        raise InvalidParams(
            f"table_list_file {relative!r} leads outside DP_TABLE_LISTS_DIR (a link?)", invalid=[FIELD]
        )
    file_name = _checked_name(target.name, "table_list_file")
    try:
        # O_NONBLOCK: a FIFO planted there must not hang the request; it is refused below.
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise not_found from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO, a device
            raise not_found
        content = os.read(fd, limit + 1)
    except OSError:
        raise not_found from None
    finally:
        os.close(fd)
    if len(content) > limit:
        raise PayloadTooLarge(f"table_list_file {relative!r} is larger than {limit} bytes")
    return TableListFile(
        file_name=file_name, tables=decode_table_list(content, FIELD, FIELD), source=relative
    )


# ---- into the task directory ----------------------------------------------------------------------


def write_into_task(data_root: Path, task_id: str, table_list: TableListFile) -> Path:
    """Create the task directory and write the list there (atomically), one name per line."""
    directory = task_dir(data_root, task_id)
    directory.mkdir(parents=True, exist_ok=True)
    return write_atomically(directory, table_list.file_name, "\n".join(table_list.tables) + "\n")


def remove_task_dir(data_root: Path, task_id: str) -> None:
    """Undo write_into_task when the create could not be published."""
    shutil.rmtree(task_dir(data_root, task_id), ignore_errors=True)
