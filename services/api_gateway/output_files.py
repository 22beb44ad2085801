"""An edited output's upload, apart from the route (routes/output_uploads.py): reading the multipart form,
checking the content, the names of versions and backups, writing the file, and the file list as the
earlier clients knew it (also used by routes/files.py).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader

from services.api_gateway.adapters.task_files import (
    LOG_FILE,
    is_safe_file_name,
    resolve_task_file,
)
from services.api_gateway.errors import (
    Conflict,
    InvalidParams,
    PayloadTooLarge,
)
from services.api_gateway.schemas.responses import FileView
from shared.atomic_files import atomic_write_text

OverwriteMode = Literal["backup", "replace", "rename", "skip"]
OVERWRITE_MODES: tuple[str, ...] = get_args(OverwriteMode)
EDITABLE_SUFFIXES = (".ddl", ".md", ".json", ".txt", ".sql")
# Kinds whose name carries a compound suffix the steps select files by (qs_*_pair.json, *_detail.md):
# a renamed copy keeps it, so it stays a file of the same kind.
_KIND_SUFFIXES = ("_pair.json", "_detail.md")
_PAIR_FILE = re.compile(r"^qs_.*_pair\.json$")
MAX_PARTS = 20
MAX_VERSIONS = 1000


async def _read_part(part: BodyPartReader, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the {what} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(reader: MultipartReader, limit: int) -> tuple[str | None, bytes | None, str | None]:
    """(file name, file content, overwrite_mode) from the form; other fields are read and dropped, all of
    them counted against `limit`. The whole body is read to its closing boundary before use."""
    file_name = content = mode = None
    parts = other = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
            raise InvalidParams(
                f"at most {MAX_PARTS} form fields, none of them nested multipart", invalid=["body"]
            )
        if part.name == "file" and part.filename is not None and content is None:
            file_name, content = part.filename, await _read_part(part, limit, "file")
        elif part.name == "overwrite_mode" and mode is None:
            raw = await _read_part(part, 100, "overwrite_mode field")
            mode = raw.decode("utf-8", errors="replace").strip()
        else:
            other += len(await _read_part(part, limit, "form's other fields"))
            if other > limit:
                raise PayloadTooLarge(f"the form's other fields are larger than {limit} bytes")
    if not reader.at_eof():
        raise ValueError("multipart body without its closing boundary")
    return file_name, content, mode


def check_content(file_name: str, content: bytes) -> str:
    """The upload as text, refused (400) unless it is UTF-8 text of the kind its name says."""
    if b"\x00" in content:
        raise InvalidParams("the file is not text", invalid=["file"])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParams("the file is not UTF-8 text", invalid=["file"]) from None
    if file_name.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidParams(f"the file is not valid JSON: {exc}", invalid=["file"]) from None
        if _PAIR_FILE.match(file_name) and not (
            isinstance(data, list)
            and all(
                isinstance(p, dict) and isinstance(p.get("question"), str) and isinstance(p.get("sql"), str)
                for p in data
            )
        ):
            raise InvalidParams(
                "a question/SQL pair file is a JSON list of objects with string `question` and `sql`",
                invalid=["file"],
            )
    return text


def versioned_name(file_name: str, version: int, *, backup: bool) -> str:
    """`x.ddl_bak1` (a backup: no step reads it), or `x_1.ddl` / `qs_a_1_pair.json` (a renamed copy that
    stays a file of its kind)."""
    if backup:
        return f"{file_name}_bak{version}"
    for suffix in _KIND_SUFFIXES:
        if file_name.endswith(suffix) and len(file_name) > len(suffix):
            return f"{file_name.removesuffix(suffix)}_{version}{suffix}"
    path = Path(file_name)
    return f"{path.stem}_{version}{path.suffix}"


def _free_name(directory: Path, file_name: str, taken: set[str], *, backup: bool) -> tuple[str, int]:
    for version in range(1, MAX_VERSIONS + 1):
        candidate = versioned_name(file_name, version, backup=backup)
        if candidate not in taken and not (directory / candidate).exists() and is_safe_file_name(candidate):
            return candidate, version
    raise Conflict(f"{file_name} has {MAX_VERSIONS} versions already; delete some first")


def store_upload(
    directory: Path, file_name: str, text: str, mode: str, taken: set[str]
) -> tuple[str, tuple[str, int] | None, bool]:
    """Write the upload (blocking; run in a thread). (stored as, (backup name, version) or None, written).

    The current file is read only as a regular file directly in the task directory (a link is never
    followed); writes replace the name atomically (a temporary file renamed over it)."""
    existing = directory / file_name
    found = resolve_task_file(directory.parent, directory.name, file_name)
    exists = found is not None and found == existing
    if mode == "skip" and exists:
        return file_name, None, False
    if mode == "rename" and exists:
        stored, _ = _free_name(directory, file_name, taken, backup=False)
        atomic_write_text(directory / stored, text, mode=None)
        return stored, None, True
    backup = None
    if mode == "backup" and exists:
        backup = _free_name(directory, file_name, taken, backup=True)
        atomic_write_text(
            directory / backup[0], existing.read_bytes().decode("utf-8", errors="replace"), mode=None
        )
    atomic_write_text(existing, text, mode=None)
    return file_name, backup, True


def listed_on_disk(
    data_root: Path, task_id: str, files: list[FileView], table_list_file: str, base_url: str
) -> list[FileView]:
    """The file list as the earlier clients knew it (blocking: it reads the directory): each entry says
    whether its file is readable now, and the task's log and table list are listed when they exist
    without being registered (the log never is; the table list until step 1 registers its copy)."""
    shown = []
    for entry in files:
        path = resolve_task_file(data_root, task_id, entry.file_name)
        shown.append(entry.model_copy(update={"is_readable": path is not None and os.access(path, os.R_OK)}))
    listed = {f.file_name for f in files}
    extra = ((LOG_FILE, "log", "the task's log"), (table_list_file, "txt", "the task's table list"))
    for name, file_type, description in extra:
        path = None if name in listed else resolve_task_file(data_root, task_id, name)
        if path is None:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        listed.add(name)
        shown.append(
            FileView(
                file_name=name,
                file_type=file_type,
                file_path=name,
                size=stat.st_size,
                file_size=stat.st_size,
                sha256=None,
                is_primary=False,
                is_downloadable=True,
                step=None,
                description=description,
                created_at=modified,
                modified_at=modified,
                download_url=base_url + quote(name),
                is_readable=os.access(path, os.R_OK),
            )
        )
    return shown
