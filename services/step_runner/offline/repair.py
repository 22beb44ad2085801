"""Deterministic repair of the SQL errors that have one obvious fix (offline provider).

It reads the PostgreSQL error text: an unknown column becomes the closest existing column of the tables
the statement reads, an unknown table the closest table, a column missing from GROUP BY is added to it,
and a missing trailing semicolon is appended. Anything else is left to a person: the answer is None.
"""

from __future__ import annotations

import difflib
import re

from services.step_runner.llm.sqltext import mask_literals, normalize_statement, quote_ident, table_ref
from services.step_runner.pipeline.catalog import TableInfo

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_FROM = re.compile(
    rf"\b(?:FROM|JOIN)\s+({_IDENT}(?:\s*\.\s*{_IDENT})?)(?:\s+(?:AS\s+)?({_IDENT}))?", re.IGNORECASE
)
_NOT_ALIAS = {
    "on",
    "where",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "cross",
    "group",
    "order",
    "limit",
    "using",
    "natural",
    "union",
    "having",
    "offset",
    "window",
    "lateral",
    "except",
    "intersect",
}
_UNKNOWN_COLUMN = re.compile(r'column "?([^"\s]+)"? does not exist', re.IGNORECASE)
_HINT_COLUMN = re.compile(r'Perhaps you meant to reference the column "([^"]+)"', re.IGNORECASE)
_UNKNOWN_RELATION = re.compile(r'relation "([^"]+)" does not exist', re.IGNORECASE)
_GROUP_BY = re.compile(r'column "([^"]+)" must appear in the GROUP BY clause', re.IGNORECASE)
_CLAUSE_AFTER_GROUP = re.compile(r"\b(HAVING|ORDER\s+BY|LIMIT|OFFSET|WINDOW|FETCH)\b|;|\)", re.IGNORECASE)
_CLAUSE_AFTER_WHERE = re.compile(r"\b(HAVING|ORDER\s+BY|LIMIT|OFFSET|WINDOW|FETCH)\b|;", re.IGNORECASE)


def _unquote(ident: str) -> str:
    ident = ident.strip()
    if ident.startswith('"') and ident.endswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def _strip_fences(sql: str) -> str:
    match = re.search(r"```(?:sql)?\s*(.*?)```", sql, re.DOTALL | re.IGNORECASE)
    return (match.group(1) if match else sql).strip()


def _sources(sql: str, tables: list[TableInfo]) -> dict[str, TableInfo]:
    """alias or table name -> the catalog table it stands for, for every table the statement reads."""
    by_name = {t.name.lower(): t for t in tables} | {t.qualified_name.lower(): t for t in tables}
    found: dict[str, TableInfo] = {}
    for match in _FROM.finditer(mask_literals(sql)):
        parts = [_unquote(p) for p in re.split(r"\s*\.\s*", match.group(1))]
        table = by_name.get(".".join(parts).lower()) or by_name.get(parts[-1].lower())
        if table is None:
            continue
        found[table.name.lower()] = table
        alias = match.group(2)
        if alias and _unquote(alias).lower() not in _NOT_ALIAS:
            found[_unquote(alias).lower()] = table
    return found


def _closest(word: str, options: list[str]) -> str | None:
    lower = {o.lower(): o for o in options}
    if word.lower() in lower:
        return lower[word.lower()]
    match = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.5)
    return lower[match[0]] if match else None


def _replace_ident(sql: str, qualifier: str | None, old: str, new: str) -> str:
    """Replace the identifier `old` (bare or quoted, optionally `qualifier.`-prefixed) outside literals."""
    name = rf'(?:"{re.escape(old)}"|(?<![\w"$]){re.escape(old)}(?![\w"$]))'
    if qualifier:
        pattern = re.compile(rf'((?:"{re.escape(qualifier)}"|\b{re.escape(qualifier)})\s*\.\s*){name}', re.I)
    else:
        pattern = re.compile(rf"(?<![.\w]){name}(?!\s*\.)", re.IGNORECASE)
    masked = mask_literals(sql)
    out, last = [], 0
    for match in pattern.finditer(masked):
        out.append(sql[last : match.start()])
        prefix = match.group(1) if qualifier else ""
        out.append(sql[match.start() : match.start() + len(prefix)] + new)
        last = match.end()
    out.append(sql[last:])
    return "".join(out)


def _fix_column(sql: str, error: str, tables: list[TableInfo]) -> str:
    match = _UNKNOWN_COLUMN.search(error)
    if not match:
        return sql
    qualifier, _, column = match.group(1).rpartition(".")
    sources = _sources(sql, tables)
    hint = _HINT_COLUMN.search(error)
    if hint:
        best: str | None = hint.group(1).rpartition(".")[2]
    else:
        scope = [sources[qualifier.lower()]] if qualifier.lower() in sources else list(sources.values())
        scope = scope or tables
        best = _closest(column, [c.name for t in scope for c in t.columns])
    if best is None or best == column:
        return sql
    return _replace_ident(sql, qualifier or None, column, quote_ident(best))


def _fix_relation(sql: str, error: str, tables: list[TableInfo]) -> str:
    match = _UNKNOWN_RELATION.search(error)
    if not match:
        return sql
    qualifier, _, name = match.group(1).rpartition(".")
    options = {t.name: t for t in tables}
    best = _closest(name, list(options))
    if best is None:
        return sql
    fixed = _replace_ident(sql, qualifier or None, name, quote_ident(best))
    if qualifier:
        fixed = fixed.replace(f"{qualifier}.{quote_ident(best)}", table_ref(options[best]))
    return fixed


def _fix_group_by(sql: str, error: str) -> str:
    match = _GROUP_BY.search(error)
    if not match:
        return sql
    qualifier, _, column = match.group(1).rpartition(".")
    expr = f"{quote_ident(qualifier)}.{quote_ident(column)}" if qualifier else quote_ident(column)
    masked = mask_literals(sql)
    groups = list(re.finditer(r"\bGROUP\s+BY\b", masked, re.IGNORECASE))
    if groups:
        start = groups[-1].end()
        end_match = _CLAUSE_AFTER_GROUP.search(masked, start)
        end = end_match.start() if end_match else len(sql)
        body = sql[start:end].rstrip()
        return sql[:start] + body + f", {expr}" + sql[start + len(body) :]
    froms = list(re.finditer(r"\bFROM\b", masked, re.IGNORECASE))
    end_match = _CLAUSE_AFTER_WHERE.search(masked, froms[-1].end() if froms else 0)
    end = end_match.start() if end_match else len(sql)
    head = sql[:end].rstrip()
    return head + f"\nGROUP BY {expr}" + (("\n" + sql[end:].lstrip()) if sql[end:].strip() else "")


def repair(sql: str, error: str, tables: list[TableInfo]) -> str | None:
    text = _strip_fences(sql)
    fixed = _fix_group_by(_fix_relation(_fix_column(text, error, tables), error, tables), error)
    result = normalize_statement(fixed)
    if result is None or result == sql.strip():
        return None
    return result
