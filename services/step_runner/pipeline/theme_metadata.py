"""The theme files step 2 writes beside the pairs: `metadata.txt` (SQL that creates and fills a
`metadata` table of themes) and `metadata_detail.md` (what that table holds)."""

from __future__ import annotations

from datetime import datetime

from services.step_runner.llm.base import Theme
from services.step_runner.llm.sqltext import quote_literal, text_array
from services.step_runner.pipeline.text_escape import markdown, sql_comment

METADATA_SQL_FILE = "metadata.txt"
METADATA_DOC_FILE = "metadata_detail.md"
SCOPE_FILE = "db_query_decision_prompt.txt"

_CREATE = """CREATE TABLE IF NOT EXISTS metadata (
    id serial PRIMARY KEY,
    topic_name varchar(100) NOT NULL,
    description text,
    related_tables text[],
    biz_entities text[],
    biz_metrics text[],
    created_at timestamp DEFAULT CURRENT_TIMESTAMP
);"""

_COLUMNS = [
    ("id", "serial", "Primary key"),
    ("topic_name", "varchar(100)", "Theme name"),
    ("description", "text", "What the theme covers"),
    ("related_tables", "text[]", "Tables the theme's questions read"),
    ("biz_entities", "text[]", "Business entities of the theme"),
    ("biz_metrics", "text[]", "Metrics people ask about in the theme"),
    ("created_at", "timestamp", "When the row was inserted"),
]


def _comment(text: str) -> str:
    return sql_comment(text)


def metadata_sql(themes: list[Theme], db_name: str, business_context: str, generated_at: datetime) -> str:
    lines = [
        "-- Business themes proposed by qa_generation",
        f"-- Database: {_comment(db_name)}",
        f"-- Business context: {_comment(business_context)}",
        f"-- Generated at: {generated_at.isoformat(timespec='seconds')}",
        "",
        _CREATE,
        "",
    ]
    if themes:
        rows = [
            "    ("
            + ", ".join(
                [
                    quote_literal(t.name[:100]),
                    quote_literal(t.description),
                    text_array(t.related_tables),
                    text_array(t.entities),
                    text_array(t.metrics),
                ]
            )
            + ")"
            for t in themes
        ]
        lines.append(
            "INSERT INTO metadata (topic_name, description, related_tables, biz_entities, biz_metrics)"
        )
        lines.append("VALUES\n" + ",\n".join(rows) + ";")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return markdown(text)


def metadata_doc(themes: list[Theme], db_name: str) -> str:
    lines = [
        "## metadata (business themes)",
        "",
        f"`metadata` holds the business themes of database {markdown(db_name)} that the question/SQL pairs were",
        "written for; `metadata.txt` creates and fills it.",
        "",
        "| column | type | description |",
        "|---|---|---|",
        *(f"| {name} | {type_} | {desc} |" for name, type_, desc in _COLUMNS),
        "",
        "### Themes",
        "",
        "| topic_name | description | related_tables | biz_entities | biz_metrics |",
        "|---|---|---|---|---|",
    ]
    for t in themes:
        lines.append(
            f"| {_cell(t.name)} | {_cell(t.description)} | {_cell(', '.join(t.related_tables))} | "
            f"{_cell(', '.join(t.entities))} | {_cell(', '.join(t.metrics))} |"
        )
    return "\n".join(lines) + "\n"
