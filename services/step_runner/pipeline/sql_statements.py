"""Just enough of PostgreSQL's lexer to split statements and tell a read-only query from anything else.

It knows string constants ('..', E'..' with backslash escapes), quoted identifiers, dollar-quoted strings,
line and nested block comments, so a `;` or a keyword inside any of them is never mistaken for SQL.
The check is a first gate only: step 3 also runs every statement in a READ ONLY transaction.
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

READ_ONLY_LEADS = frozenset({"SELECT", "WITH"})
# Words that never belong in a read-only query when they stand on their own (not as `alias.word`).
FORBIDDEN_WORDS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "TRUNCATE", "CREATE", "DROP", "ALTER", "GRANT", "REVOKE"}
)
# Functions with side effects that a planner-only EXPLAIN would not catch but a later run would.
SIDE_EFFECT_FUNCTIONS = frozenset(
    {
        "nextval",
        "setval",
        "set_config",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_notify",
        "pg_advisory_lock",
        "pg_advisory_xact_lock",
        "lo_import",
        "lo_export",
        "lo_unlink",
        "lo_create",
        "lo_creat",
        "lo_from_bytea",
        "lo_put",
        "pg_logical_emit_message",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_stat_reset",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "dblink",
        "dblink_exec",
    }
)


class SqlSyntaxError(ValueError):
    """The text cannot be tokenized (an unterminated string, identifier or comment)."""


class UnsafeSql(ValueError):
    """The text is not exactly one read-only query; the message says why."""


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


def single_read_only_statement(sql: str) -> str:
    """The one read-only query in `sql` (stripped, no trailing `;`); UnsafeSql says why not."""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError as exc:
        raise UnsafeSql(str(exc)) from None
    if not statements:
        raise UnsafeSql("empty SQL")
    if len(statements) > 1:
        raise UnsafeSql(f"{len(statements)} statements: only a single statement is accepted")
    statement = statements[0]
    tokens = tokenize(statement)
    lead = next((t for t in tokens if not (t.kind == "op" and t.text == "(")), None)
    if lead is None or lead.kind != "word" or lead.text.upper() not in READ_ONLY_LEADS:
        shown = lead.text.upper() if lead is not None else statement[:20]
        raise UnsafeSql(f"{shown} is not a read-only query: only SELECT and WITH are accepted")
    for index, token in enumerate(tokens):
        if token.kind != "word":
            continue
        after_dot = index > 0 and tokens[index - 1].text == "."
        word = token.text.upper()
        if word in FORBIDDEN_WORDS and not after_dot:
            raise UnsafeSql(f"contains {word}: only read-only queries are accepted")
        if word == "FOR" and not after_dot and _row_lock(tokens[index + 1 : index + 3]):
            raise UnsafeSql("contains FOR SHARE / FOR KEY SHARE: a row lock is not read-only")
        calls = index + 1 < len(tokens) and tokens[index + 1].text == "("
        if calls and token.text.lower() in SIDE_EFFECT_FUNCTIONS:
            raise UnsafeSql(f"calls {token.text.lower()}(), which has side effects")
    return statement


def _row_lock(following: list[Token]) -> bool:
    """Whether the words after a FOR are a locking clause (FOR SHARE, FOR KEY SHARE); FOR UPDATE and
    FOR NO KEY UPDATE are caught by UPDATE already."""
    texts = [t.text.upper() for t in following if t.kind == "word"]
    return texts[:1] == ["SHARE"] or texts[:2] == ["KEY", "SHARE"]


def referenced_names(sql: str) -> set[str]:
    """Every identifier in the text, as PostgreSQL would resolve it (unquoted ones folded to lower case)."""
    try:
        tokens = tokenize(sql)
    except SqlSyntaxError:
        return {word.lower() for word in _WORD.findall(sql)}
    names: set[str] = set()
    for token in tokens:
        if token.kind == "word":
            names.add(token.text.lower())
        elif token.kind == "qident" and token.text.startswith('"'):
            names.add(token.text[1:-1].replace('""', '"'))
    return names
