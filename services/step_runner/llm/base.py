"""The LLM port: the few questions the workflow asks a language model, each with a typed answer.

Two providers implement it: `openai` (any OpenAI-compatible chat-completions endpoint) and `offline`
(deterministic, schema-grounded generation with no network, the default). Steps depend on this
interface only, never on a provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from services.step_runner.pipeline.catalog import TableInfo


class TableDescription(BaseModel):
    """Descriptions for a table and its columns, matched to columns by name (never by position)."""

    model_config = ConfigDict(frozen=True)

    table_comment: str
    column_comments: dict[str, str] = Field(default_factory=dict)


class Theme(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    related_tables: list[str]
    entities: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)


class QuestionSQL(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    sql: str


class LLMError(Exception):
    """The model could not give a usable answer; `retryable` for rate limits, timeouts and 5xx."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class TextToSQLModel(Protocol):
    name: str

    async def describe_table(self, table: TableInfo, business_context: str) -> TableDescription: ...

    async def propose_themes(
        self, tables: list[TableInfo], business_context: str, count: int
    ) -> list[Theme]: ...

    async def generate_pairs(
        self, theme: Theme, tables: list[TableInfo], business_context: str, count: int
    ) -> list[QuestionSQL]: ...

    async def repair_sql(
        self, sql: str, error: str, ddl: str, tables: list[TableInfo], question: str = ""
    ) -> str | None:
        """A corrected statement that still answers `question`, or None when the model cannot repair it."""
        ...

    async def summarize_scope(self, tables: list[TableInfo], business_context: str) -> str: ...

    async def aclose(self) -> None: ...


# How every executor is given its model: a callable it calls when a run needs one (registry.py builds it).
LLMFactory = Callable[[], TextToSQLModel]
