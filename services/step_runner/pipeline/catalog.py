"""What step 1 learns about each table, as the later steps and the LLM providers read it.

Step 1 writes it to `schema_catalog.json` in the task directory beside the .ddl/.md files, so step 2
and the offline generator work from structured facts rather than re-parsing markdown.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ColumnInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    data_type: str  # normalised PostgreSQL type, e.g. "integer", "varchar(32)", "numeric(12,2)", "text[]"
    nullable: bool = True
    default: str | None = None
    is_primary_key: bool = False
    comment: str | None = None  # existing comment, or the description the LLM filled in
    sample_values: list[Any] = Field(default_factory=list)
    enum_values: list[Any] | None = None  # set when the column looks enum-like (few distinct values)


class ForeignKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    columns: list[str]
    ref_schema: str
    ref_table: str
    ref_columns: list[str]


class TableInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_name: str = "public"
    name: str
    comment: str | None = None
    columns: list[ColumnInfo]
    primary_key: list[str] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    estimated_rows: int = 0
    sample_rows: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return self.name if self.schema_name == "public" else f"{self.schema_name}.{self.name}"


class SchemaCatalog(BaseModel):
    db_name: str
    business_context: str
    tables: list[TableInfo]
    # schema.table -> fingerprint of what its documents are made from (pipeline/fingerprint.py)
    fingerprints: dict[str, str] = Field(default_factory=dict)
    # schema.table -> LLM tokens its descriptions cost when they were made (kept when a later run reuses them)
    llm_tokens: dict[str, int] = Field(default_factory=dict)
    # every table and view of the listed tables' schemas when step 1 ran (tells a new table from one
    # that was there and not listed)
    schema_tables: list[str] = Field(default_factory=list)
