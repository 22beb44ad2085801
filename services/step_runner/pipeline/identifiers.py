"""Identifiers as they appear in the files we write: bare when PostgreSQL reads them back unchanged,
double-quoted otherwise (upper case, odd characters, key words), so the DDL is both valid and readable.
A name with a line break or another control character is written as a Unicode-escaped identifier
(U&"x\\000aDROP …"), so no file line ever starts inside a name."""

from __future__ import annotations

import re

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Every key word that is not "unreserved" in PostgreSQL 15 (pg_get_keywords() catcode <> 'U'): quoting
# these is what the server's own quote_ident() does, and it is never wrong.
KEYWORDS = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean
    both case cast char character check coalesce collate collation column concurrently constraint
    create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user dec decimal default deferrable desc distinct do else end except
    exists extract false fetch float for foreign freeze from full grant greatest group grouping having
    ilike in initially inner inout int integer intersect interval into is isnull join lateral leading
    least left like limit localtime localtimestamp national natural nchar none normalize not notnull
    null nullif numeric offset on only or order out outer overlaps overlay placing position precision
    primary real references returning right row select session_user setof similar smallint some
    substring symmetric table tablesample then time timestamp to trailing treat trim true union unique
    user using values varchar variadic verbose when where window with xmlattributes xmlconcat
    xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split()
)


def ident(name: str) -> str:
    if _PLAIN.fullmatch(name) and name not in KEYWORDS:
        return name
    return quoted(name)


def quoted(name: str) -> str:
    """`name` double-quoted, as U&"…" with escapes when it holds a control character."""
    if _CONTROL.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '""')
        return 'U&"' + _CONTROL.sub(lambda m: f"\\{ord(m.group()):04x}", escaped) + '"'
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string literal for DDL text; with control characters an E'' literal of escapes, so a comment
    with line breaks stays on one line of the file."""
    if "\x00" in text:
        raise ValueError("a string literal cannot contain NUL")
    if not _CONTROL.search(text):
        return "'" + text.replace("'", "''") + "'"
    escaped = text.replace("\\", "\\\\").replace("'", "''")
    return "E'" + _CONTROL.sub(_escape_char, escaped) + "'"


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def relation(schema: str, name: str) -> str:
    """A table or type name as the DDL writes it: unqualified in `public`, so it runs in any schema."""
    return ident(name) if schema == "public" else f"{ident(schema)}.{ident(name)}"
