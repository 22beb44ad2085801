"""COPY text format (shared/copy_text.py): what PostgreSQL reads back must be the value sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.copy_text import copy_text, field


def test_text_escapes_the_four_characters_copy_treats_specially() -> None:
    assert field("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert field("plain") == "plain"
    # each one alone (the escape scans for them before replacing)
    assert [field(c) for c in ("\\", "\t", "\n", "\r")] == ["\\\\", "\\t", "\\n", "\\r"]
    assert field("\\n") == "\\\\n"  # a backslash and an n: not a newline


def test_null_bool_numbers_uuid_time_and_json() -> None:
    at = datetime(2026, 11, 30, 3, 0, 1, 123456, tzinfo=UTC)
    eid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert [field(v) for v in (None, True, False, 7, 1.5, eid, at)] == [
        "\\N", "t", "f", "7", "1.5", str(eid), "2026-11-30T03:00:01.123456+00:00",
    ]  # fmt: skip
    assert field({"k": "a\nb"}) == '{"k": "a\\\\nb"}'  # JSON escapes the newline, COPY the backslash


def test_rows_are_lines_of_tab_separated_fields() -> None:
    assert copy_text([(1, "x", None), (2, "y\tz", True)]) == b"1\tx\t\\N\n2\ty\\tz\tt\n"
