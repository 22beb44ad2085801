"""The list of tables a task works on, as users write it: one per line or comma-separated.

`#` and `--` start comments. Unquoted names fold to lower case as PostgreSQL folds them; a double-quoted
name keeps its case. Only plain identifier characters are accepted, so a name can never smuggle SQL or a
path into a query or a file name (they are quoted again wherever they are used).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_$]{0,62}|"[A-Za-z0-9_$]{1,63}")'
_NAME = re.compile(rf"^(?:(?P<schema>{_IDENT})\s*\.\s*)?(?P<name>{_IDENT})$")
_COMMENT = re.compile(r"(#|--).*$")
_FOLDED = re.compile(r"^[a-z_][a-z0-9_$]*$")
MAX_TABLES = 2000


class TableListError(ValueError):
    """The table list has entries that are not table names; the message lists them."""


@dataclass(frozen=True, order=True)
class TableRef:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def display(self) -> str:
        """How docs and file names refer to the table: bare for `public`, else schema.name."""
        return self.name if self.schema == "public" else self.qualified

    @property
    def entry(self) -> str:
        """The table as a table-list line that parses back to this reference."""
        return ".".join(part if _FOLDED.fullmatch(part) else f'"{part}"' for part in (self.schema, self.name))

    @property
    def file_stem(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}__{self.name}"


def _identifier(token: str) -> str:
    return token[1:-1] if token.startswith('"') else token.lower()


def parse_entry(entry: str) -> TableRef:
    match = _NAME.fullmatch(entry.strip())
    if match is None:
        raise TableListError(f"not a table name: {entry.strip()[:80]!r}")
    schema = match["schema"]
    return TableRef(schema=_identifier(schema) if schema else "public", name=_identifier(match["name"]))


def parse_table_names(entries: Iterable[str]) -> list[TableRef]:
    """Validated, de-duplicated table references in first-seen order (the list given in a request)."""
    refs: list[TableRef] = []
    seen: set[TableRef] = set()
    problems: list[str] = []
    for entry in entries:
        if not entry.strip():
            continue
        try:
            ref = parse_entry(entry)
        except TableListError as exc:
            problems.append(str(exc))
            continue
        if ref not in seen:
            seen.add(ref)
            refs.append(ref)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise TableListError(f"invalid table list: {shown}")
    if not refs:
        raise TableListError("the table list names no table")
    if len(refs) > MAX_TABLES:
        raise TableListError(f"the table list names {len(refs)} tables, at most {MAX_TABLES} are allowed")
    return refs


def split_table_list(text: str) -> list[str]:
    entries: list[str] = []
    for line in text.splitlines():
        line = _COMMENT.sub("", line)
        entries.extend(part for part in (p.strip() for p in line.split(",")) if part)
    return entries


def parse_table_list(text: str) -> list[TableRef]:
    """Parse the text of a table-list file."""
    return parse_table_names(split_table_list(text))


def render_table_list(refs: Iterable[TableRef]) -> str:
    return "".join(f"{ref.entry}\n" for ref in refs)
