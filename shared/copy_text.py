"""Rows in PostgreSQL's COPY text format, for `asyncpg.Connection.copy_to_table(..., format="text")`.

The binary COPY of `copy_records_to_table` cannot carry jsonb while the pool decodes jsonb as text
(shared/db.py), so the bulk writers (event store, log rows) send text: one line per row, fields split by
tabs, NULL as \\N, and backslash, tab, newline and carriage return escaped. A NUL character is sent as
is and PostgreSQL refuses it, as it would in any other statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID


def _escaped(text: str) -> str:
    """Backslash, tab, newline and carriage return escaped (checked first: most fields have none, and
    `str.translate` with a table looks up every character, 17x slower than these scans)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def field(value: Any) -> str:
    """One field; a str goes as is (into a jsonb column it must already be JSON text)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return _escaped(json.dumps(value, default=str))


def line(row: Sequence[Any]) -> str:
    """One row's line, ending in a newline."""
    return "\t".join(map(field, row)) + "\n"


def copy_text(rows: Iterable[Sequence[Any]]) -> bytes:
    """The COPY text body of `rows` (dicts and lists become JSON)."""
    return "".join(map(line, rows)).encode()
