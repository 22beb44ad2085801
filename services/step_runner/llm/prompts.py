"""The chat messages the OpenAI-compatible provider sends, one builder per port method.

Every prompt asks for JSON only and shows its shape. The first line of each user message names the
task (`Task: <method>`), which helps the model and lets a test server tell the prompts apart.
"""

from __future__ import annotations

import json

from services.step_runner.llm.base import Theme
from services.step_runner.llm.sqltext import quote_ident, quote_literal, table_ref
from services.step_runner.offline.schema import has_cjk
from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.column_roles import column_marker
from services.step_runner.pipeline.relations import infer_relations
from services.step_runner.pipeline.text_escape import sql_comment
from shared.quality_flags import QUALITY_REASON_PREFIX

Messages = list[dict[str, str]]

SYSTEM = (
    "You are a senior data analyst and PostgreSQL expert who prepares Text2SQL training data. "
    "Answer with one JSON value only: no prose, no markdown fences."
)


def _language(business_context: str) -> str:
    return "Simplified Chinese" if has_cjk(business_context) else "English"


# What the quality pass of step 3 (pipeline/pair_quality.py) flags, said to the model up front.
QUALITY_RULES = (
    "Quality rules (pairs that break them are dropped or repaired): "
    "1. Ask about the business: measures (amounts, counts, rates) by entities and periods; never about "
    "columns marked [audit] or [technical] (who created or updated a row, when it was changed, load "
    "batches): not as the answer, not grouped by, not filtered on. "
    "2. A table with a column marked [soft-delete] is always read with the condition shown there, for "
    "every alias of it. "
    "3. Join tables along the relations listed under the schema (declared or inferred); never a "
    "cartesian product; when relations exist, at least one question in five spans two or more tables. "
    "Take the direct relation: rows with their own key to the table you group by join it directly, not "
    "through a third table (a customer's orders by orders.customer_id, not via the customer's addresses). "
    "4. A listing of rows ends with LIMIT; never SELECT *: name the columns the question asks for. "
    "5. No two questions alike. "
    "6. Word questions in business terms taken from the comments: never spell table or column names, "
    "underscores or a prefix the tables share. "
    "7. A column marked [rate] (a price per unit, a rating, a score, a percentage) is averaged over rows, "
    "never summed: ask for the average rating, not the total rating."
)


def render_relations(tables: list[TableInfo]) -> str:
    """The joins between these tables, declared and inferred (pipeline/relations.py), one per line."""
    rels = infer_relations(tables)
    return "\n".join(f"- {sql_comment(r.describe())}" for r in rels)


def render_table(table: TableInfo) -> str:
    """Compact DDL with comments, enum values and samples: what a model needs to write correct SQL.
    Names are quoted and comments kept on their `--` line, whatever the catalog holds. Audit, technical
    and soft-delete columns carry their marker (pipeline/column_roles.py)."""
    comment = f"  -- {sql_comment(table.comment)}" if table.comment else ""
    lines = [f"CREATE TABLE {table_ref(table)} (" + comment]
    fks = {c: fk for fk in table.foreign_keys for c in fk.columns}
    for i, col in enumerate(table.columns):
        parts = [f"  {quote_ident(col.name)} {col.data_type}"]
        if col.is_primary_key or col.name in table.primary_key:
            parts.append("PRIMARY KEY")
        if not col.nullable:
            parts.append("NOT NULL")
        if col.name in fks:
            fk = fks[col.name]
            ref_columns = ", ".join(quote_ident(c) for c in fk.ref_columns)
            parts.append(f"REFERENCES {quote_ident(fk.ref_table)}({ref_columns})")
        notes = []
        marker = column_marker(col, table)
        if marker:
            notes.append(marker)
        if col.comment:
            notes.append(col.comment)
        if col.enum_values:
            notes.append("values: " + ", ".join(quote_literal(v) for v in col.enum_values[:20]))
        elif col.sample_values:
            notes.append("e.g. " + ", ".join(quote_literal(v) for v in col.sample_values[:3]))
        lines.append(
            " ".join(parts)
            + ("," if i < len(table.columns) - 1 else "")
            + (f"  -- {sql_comment('; '.join(notes))}" if notes else "")
        )
    lines.append(f");  -- about {table.estimated_rows} rows" if table.estimated_rows else ");")
    return "\n".join(lines)


def render_schema(tables: list[TableInfo]) -> str:
    text = "\n\n".join(render_table(t) for t in tables)
    relations = render_relations(tables)
    return text + (f"\n\nRelations (join along these):\n{relations}" if relations else "")


def _messages(user: str) -> Messages:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def describe_table(table: TableInfo, business_context: str) -> Messages:
    columns = ", ".join(c.name for c in table.columns)
    shape = {"table_comment": "...", "column_comments": {c.name: "..." for c in table.columns[:2]}}
    return _messages(
        "Task: describe_table\n"
        f"Business context: {business_context}\n\n{render_table(table)}\n\n"
        f"Write a one-sentence description of the table and of every column ({columns}), in "
        f"{_language(business_context)}. Keep existing comments' meaning; use the names, types, keys and "
        "values to infer the rest.\n"
        f"Answer as JSON: {json.dumps(shape, ensure_ascii=False)} with one entry per column, keyed by the "
        "exact column name."
    )


def propose_themes(tables: list[TableInfo], business_context: str, count: int) -> Messages:
    shape = {
        "themes": [
            {
                "name": "...",
                "description": "...",
                "related_tables": ["table"],
                "entities": ["..."],
                "metrics": ["..."],
            }
        ]
    }
    return _messages(
        "Task: propose_themes\n"
        f"Business context: {business_context}\n\nSchema:\n{render_schema(tables)}\n\n"
        f"Propose exactly {count} distinct business analysis themes that this data can answer, in "
        f"{_language(business_context)}. related_tables must be table names from the schema; entities are "
        "business objects, metrics the numbers people ask about. Name each theme after the business (e.g. "
        "'Service-area revenue'), never after a column or a table name, and never about [audit] or "
        "[technical] columns; group related tables (joined along the relations) in one theme.\n"
        f"Answer as JSON: {json.dumps(shape)}"
    )


def generate_pairs(theme: Theme, tables: list[TableInfo], business_context: str, count: int) -> Messages:
    shape = {"pairs": [{"question": "...", "sql": "SELECT ...;"}]}
    return _messages(
        "Task: generate_pairs\n"
        f"Business context: {business_context}\n"
        f"Theme: {theme.name}\nTheme description: {theme.description}\n"
        f"Related tables: {', '.join(theme.related_tables)}\n"
        f"Metrics: {', '.join(theme.metrics)}\n\nSchema:\n{render_schema(tables)}\n\n"
        f"Write exactly {count} distinct question/SQL pairs for this theme. Questions are what a business "
        f"user would ask, in {_language(business_context)}. Each SQL is one PostgreSQL SELECT (or WITH) "
        "statement ending with ';' that answers its question using only the tables and columns above; "
        "double-quote identifiers that are not plain lower case; use CURRENT_DATE for relative dates.\n"
        f"{QUALITY_RULES}\n"
        f"Answer as JSON: {json.dumps(shape)}"
    )


def repair_sql(sql: str, error: str, ddl: str, tables: list[TableInfo], question: str = "") -> Messages:
    schema = ddl.strip() or render_schema(tables)
    # The question is what the statement means: without it a "repair" may run yet answer something else.
    asked = f"It must answer this question:\n{question.strip()}\n\n" if question.strip() else ""
    if error.startswith(QUALITY_REASON_PREFIX):
        # a quality repair: the statement runs; the flagged problem must go, the meaning must stay
        return _messages(
            "Task: repair_sql\n"
            f"{asked}This PostgreSQL statement runs, but as Text2SQL training data it has a quality problem:"
            f"\n{sql}\n\nProblem to fix:\n{error.removeprefix(QUALITY_REASON_PREFIX)}\n\n"
            f"Schema:\n{render_schema(tables) if tables else schema}\n\n{QUALITY_RULES}\n\n"
            "Rewrite it so that the problem is gone and it still answers the same question: one SELECT/WITH "
            "statement ending with ';', only existing tables and columns. If the question itself cannot be "
            "answered without the problem (it asks about bookkeeping, or for the total of a [rate]), answer "
            "null for sql.\n"
            'Answer as JSON: {"sql": "SELECT ...;"}'
        )
    return _messages(
        "Task: repair_sql\n"
        f"{asked}This PostgreSQL statement fails:\n{sql}\n\nError:\n{error}\n\nSchema:\n{schema}\n\n"
        "Correct it so that it runs and still answers the same question: one SELECT/WITH statement ending "
        "with ';', only existing tables and columns. If it cannot be corrected, answer null for sql.\n"
        'Answer as JSON: {"sql": "SELECT ...;"}'
    )


def summarize_scope(tables: list[TableInfo], business_context: str) -> Messages:
    return _messages(
        "Task: summarize_scope\n"
        f"Business context: {business_context}\n\nSchema:\n{render_schema(tables)}\n\n"
        f"In {_language(business_context)}, summarize the business scope of this database for an assistant "
        "that must decide whether a user's question can be answered from it: what it stores, the main "
        "entities, the key metrics and the time span, in a few short paragraphs.\n"
        'Answer as JSON: {"summary": "..."}'
    )


def fix_request(reason: str) -> dict[str, str]:
    return {
        "role": "user",
        "content": f"That answer could not be used: {reason}. Reply again with only the JSON asked for.",
    }
