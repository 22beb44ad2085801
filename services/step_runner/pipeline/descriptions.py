"""Merging what the LLM wrote into what the database already says: existing comments always win."""

from __future__ import annotations

from collections import Counter

from services.step_runner.llm.base import TableDescription
from services.step_runner.pipeline.catalog import TableInfo


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def needs_description(table: TableInfo) -> bool:
    return _blank(table.comment) or any(_blank(c.comment) for c in table.columns)


def fill_descriptions(table: TableInfo, described: TableDescription) -> tuple[TableInfo, int]:
    """The table with only its missing descriptions filled in, and how many were filled.

    Column descriptions are matched by name (exactly, else case-insensitively when that is unambiguous on
    both sides: `name` and `Name` are two columns); descriptions of columns the table does not have are
    ignored.
    """
    by_lower: dict[str, str | None] = {}
    for key, value in described.column_comments.items():
        by_lower[key.lower()] = None if key.lower() in by_lower else value
    spellings = Counter(c.name.lower() for c in table.columns)
    filled = 0
    columns = []
    for column in table.columns:
        text: str | None = described.column_comments.get(column.name)
        if text is None and spellings[column.name.lower()] == 1:
            text = by_lower.get(column.name.lower())
        if _blank(column.comment) and not _blank(text):
            columns.append(column.model_copy(update={"comment": " ".join(str(text).split())}))
            filled += 1
        else:
            columns.append(column)
    comment = table.comment
    if _blank(comment) and not _blank(described.table_comment):
        comment = " ".join(described.table_comment.split())
        filled += 1
    return table.model_copy(update={"comment": comment, "columns": columns}), filled
