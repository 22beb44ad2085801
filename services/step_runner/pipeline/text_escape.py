"""Catalog text (table, column and constraint names, comments, defaults, sample values) made safe for the
place it is written to. The business database chooses this text, so it may hold newlines, control
characters, `--`, `|` or backticks meant to break out of a comment line or a Markdown table.

- `sql_comment`: one line with no line break or control character, so a `-- ...` line stays a comment
  (PostgreSQL ends `--` comments at \\n or \\r; editors and renderers also break at \\v, \\f, U+2028...).
- `markdown`: one line with Markdown's active characters escaped, so a name cannot open a heading,
  a code span, a link or a table cell.
Identifiers in SQL are quoted with identifiers.ident(); literals with business_db.quote_literal().
"""

from __future__ import annotations

import re

# Control characters (C0, DEL, C1) and Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
# Underscores stay as they are: names are full of them and a single `_` rarely emphasises anything.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*\[\]<>|])")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """Whitespace runs (line breaks included) become one space; other control characters are shown as
    \\xNN escapes, so nothing in the result starts a new line."""
    spaced = " ".join(part for part in re.split(r"[\t\n\r\v\f\u2028\u2029\u0085 ]+", text) if part)
    return _CONTROL.sub(_visible, spaced)


def sql_comment(text: str) -> str:
    """Text for the rest of a `-- ` comment line."""
    return one_line(text)


def markdown(text: str) -> str:
    """Text for a Markdown line or table cell: one line, active characters backslash-escaped."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", one_line(text))
