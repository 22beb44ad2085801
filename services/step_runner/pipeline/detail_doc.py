"""The `<table>_detail.md` file: what a person (and the Text2SQL assistant) should know about a table.

Sections start with `## ` so step 4 can cut the document into self-contained chunks. Every name,
comment and value from the business database goes through text_escape.markdown (one line, `|`, backticks
and other active characters escaped), so none can start a section, a code span or a table cell.
"""

from __future__ import annotations

import json
from typing import Any

from services.step_runner.pipeline.introspect import IntrospectedTable
from services.step_runner.pipeline.text_escape import markdown as md

MAX_SAMPLE_CELL = 60


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    text = text if len(text) <= MAX_SAMPLE_CELL else text[: MAX_SAMPLE_CELL - 1] + "…"
    return md(text)


def _values(values: list[Any]) -> str:
    return ", ".join(_cell(v) for v in values)


def _names(names: list[str]) -> str:
    return md(", ".join(names))


def render_detail(table: IntrospectedTable) -> str:
    info = table.info
    rows = f"{info.estimated_rows:,} rows" if table.row_count_exact else f"about {info.estimated_rows:,} rows"
    out: list[str] = [f"# {md(info.qualified_name)}", ""]
    out.append(md(info.comment) if info.comment else "(no description)")
    out += ["", f"- Schema: {md(info.schema_name)}", f"- Kind: {md(table.kind)}", f"- Size: {rows}"]
    if info.primary_key:
        out.append(f"- Primary key: {_names(info.primary_key)}")
    for unique in table.unique_constraints:
        out.append(f"- Unique: {_names(unique)}")

    out += ["", "## Columns", ""]
    for column in info.columns:
        flags = [column.data_type, "not null" if not column.nullable else "nullable"]
        if column.is_primary_key:
            flags.append("primary key")
        if column.default:
            flags.append(f"default {column.default}")
        line = f"- **{md(column.name)}** ({md(', '.join(flags))})"
        if column.comment:
            line += f": {md(column.comment)}"
        if column.sample_values and not column.enum_values:
            line += f". Examples: {_values(column.sample_values)}"
        out.append(line)

    if info.foreign_keys:
        out += ["", "## Relationships", ""]
        for fk in info.foreign_keys:
            target = fk.ref_table if fk.ref_schema == "public" else f"{fk.ref_schema}.{fk.ref_table}"
            out.append(f"- ({_names(fk.columns)}) references {md(target)} ({_names(fk.ref_columns)})")

    enum_columns = [c for c in info.columns if c.enum_values]
    if enum_columns:
        out += ["", "## Allowed values", ""]
        for column in enum_columns:
            out.append(f"- **{md(column.name)}**: {_values(column.enum_values or [])}")

    if info.sample_rows:
        names = [c.name for c in info.columns]
        out += [
            "",
            "## Sample rows",
            "",
            "| " + " | ".join(md(n) for n in names) + " |",
            "|" + "---|" * len(names),
        ]
        for row in info.sample_rows:
            out.append("| " + " | ".join(_cell(row.get(n)) for n in names) + " |")

    if table.warnings:
        out += ["", "## Notes", ""]
        out.extend(f"- {md(warning)}" for warning in table.warnings)
    return "\n".join(out) + "\n"
