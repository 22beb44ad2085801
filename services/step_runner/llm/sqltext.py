"""Small PostgreSQL text helpers: quoting identifiers and literals, and checking a statement's shape."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.identifiers import quoted

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")

# PostgreSQL's reserved key words (and the few "requires AS" ones): a bare column of this name fails to parse.
RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect
    into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null
    offset on only or order outer overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true union unique user using
    variadic verbose when where window with
    """.split()
)


def quote_ident(name: str) -> str:
    """`name` as PostgreSQL reads it: bare when plain lower-case and not reserved, double-quoted otherwise."""
    if _PLAIN.fullmatch(name) and name not in RESERVED:
        return name
    return quoted(name)


def table_ref(table: TableInfo) -> str:
    if table.schema_name == "public":
        return quote_ident(table.name)
    return f"{quote_ident(table.schema_name)}.{quote_ident(table.name)}"


def quote_literal(value: Any) -> str:
    """A SQL literal for a sample or enum value as it came from the catalog (JSON types)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    text = str(value).replace("\x00", "")
    return "'" + text.replace("'", "''") + "'"


def text_array(values: list[str]) -> str:
    """A PostgreSQL text[] literal expression: ARRAY['a','b']::text[] (empty arrays need the cast)."""
    return "ARRAY[" + ", ".join(quote_literal(v) for v in values) + "]::text[]"


_STRINGS_AND_COMMENTS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$([A-Za-z_]*)\$.*?\$\1\$""", re.DOTALL
)


def strip_strings_and_comments(sql: str) -> str:
    """The statement with literals, quoted names and comments blanked, for looking at its structure."""
    return _STRINGS_AND_COMMENTS.sub(lambda m: " " if m.group(0).startswith(("-", "/")) else "''", sql)


def normalize_statement(sql: str) -> str | None:
    """One SELECT/WITH statement ending with `;`, or None when `sql` is not exactly one query."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        return None
    bare = strip_strings_and_comments(text)
    if ";" in bare:
        return None
    first = re.match(r"\s*\(*\s*([A-Za-z]+)", bare)
    if first is None or first.group(1).lower() not in {"select", "with"}:
        return None
    return text + ";"


def sql_fingerprint(sql: str) -> str:
    """What two statements that differ only in layout and letter case share (for de-duplication)."""
    return re.sub(r"\s+", " ", sql.strip().rstrip(";")).strip().lower()


_LITERALS_AND_COMMENTS = re.compile(
    r"""'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/|\$([A-Za-z_]*)\$.*?\$\1\$""", re.DOTALL
)


def mask_literals(sql: str) -> str:
    """`sql` with string literals and comments blanked to spaces, same length (quoted names stay)."""
    return _LITERALS_AND_COMMENTS.sub(lambda m: " " * len(m.group(0)), sql)
