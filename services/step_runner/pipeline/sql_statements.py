"""Just enough of PostgreSQL's lexer to split statements and read the words of a short expression.

It knows string constants ('..', E'..' with backslash escapes), quoted identifiers, dollar-quoted strings,
line and nested block comments, so a `;` or a keyword inside any of them is never mistaken for SQL.
Whether a statement may be kept is not decided here: that is the parse-tree gate in sql_gate.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["word", "qident", "string", "number", "param", "op", "semicolon"]

_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_PARAM = re.compile(r"\$\d+")


class SqlSyntaxError(ValueError):
    """The text cannot be tokenized (an unterminated string, identifier or comment)."""


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    start: int
    end: int


def _skip_block_comment(sql: str, pos: int) -> int:
    depth = 0
    i = pos
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlSyntaxError("unterminated /* comment")


def _end_of_quoted(sql: str, pos: int, quote: str, *, backslash: bool = False) -> int:
    """Index just after the closing quote of a constant starting at `pos` (the opening quote)."""
    i = pos + 1
    while i < len(sql):
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise SqlSyntaxError("unterminated quoted identifier" if quote == '"' else "unterminated string constant")


def tokenize(sql: str) -> list[Token]:
    """Tokens without comments and whitespace."""
    tokens: list[Token] = []
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            end = _end_of_quoted(sql, i, "'")
            tokens.append(Token("string", sql[i:end], i, end))
            i = end
        elif ch in "eE" and i + 1 < n and sql[i + 1] == "'":
            end = _end_of_quoted(sql, i + 1, "'", backslash=True)
            tokens.append(Token("string", sql[i:end], i, end))
            i = end
        elif ch in "bBxXnN" and i + 1 < n and sql[i + 1] == "'":
            end = _end_of_quoted(sql, i + 1, "'")
            tokens.append(Token("string", sql[i:end], i, end))
            i = end
        elif sql.startswith(("u&'", "U&'"), i):
            end = _end_of_quoted(sql, i + 2, "'")
            tokens.append(Token("string", sql[i:end], i, end))
            i = end
        elif sql.startswith(('u&"', 'U&"'), i):
            end = _end_of_quoted(sql, i + 2, '"')
            tokens.append(Token("qident", sql[i:end], i, end))
            i = end
        elif ch == '"':
            end = _end_of_quoted(sql, i, '"')
            tokens.append(Token("qident", sql[i:end], i, end))
            i = end
        elif ch == "$":
            if param := _PARAM.match(sql, i):
                tokens.append(Token("param", param.group(), i, param.end()))
                i = param.end()
            elif tag := _DOLLAR_TAG.match(sql, i):
                close = sql.find(tag.group(), tag.end())
                if close < 0:
                    raise SqlSyntaxError(f"unterminated dollar-quoted string {tag.group()}")
                end = close + len(tag.group())
                tokens.append(Token("string", sql[i:end], i, end))
                i = end
            else:
                tokens.append(Token("op", ch, i, i + 1))
                i += 1
        elif word := _WORD.match(sql, i):
            tokens.append(Token("word", word.group(), i, word.end()))
            i = word.end()
        elif (ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit())) and (
            number := _NUMBER.match(sql, i)
        ):
            tokens.append(Token("number", number.group(), i, number.end()))
            i = number.end()
        elif ch == ";":
            tokens.append(Token("semicolon", ch, i, i + 1))
            i += 1
        else:
            tokens.append(Token("op", ch, i, i + 1))
            i += 1
    return tokens


def split_statements(sql: str) -> list[str]:
    """The statements in `sql`, from first to last token (comments around them dropped), without `;`."""
    statements: list[str] = []
    first: Token | None = None
    last: Token | None = None
    for token in tokenize(sql):
        if token.kind == "semicolon":
            if first is not None and last is not None:
                statements.append(sql[first.start : last.end])
            first = last = None
        else:
            first = first or token
            last = token
    if first is not None and last is not None:
        statements.append(sql[first.start : last.end])
    return statements
