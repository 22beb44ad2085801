"""TextToSQLModel over any OpenAI-compatible /chat/completions endpoint (OpenAI, DeepSeek, Qwen's
compatible mode, Ollama, vLLM).

One aiohttp session per model, opened on first use and closed by `aclose()`. HTTP failures are retried
by `shared.openai_http`; an answer that is not the JSON asked for is re-asked a bounded number of times
and then becomes an LLMError. A semaphore bounds the requests in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import structlog
from pydantic import TypeAdapter, ValidationError

from services.step_runner.llm import prompts
from services.step_runner.llm.base import LLMError, QuestionSQL, TableDescription, Theme
from services.step_runner.llm.jsonout import JSONExtractionError, as_list, as_object, extract_json
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.llm.sqltext import normalize_statement
from services.step_runner.pipeline.catalog import TableInfo
from shared.openai_http import OpenAIEndpoint, OpenAIHTTPError, RetryPolicy

T = TypeVar("T")
log = structlog.get_logger(__name__)

_THEMES = TypeAdapter(list[Theme])
_PAIRS = TypeAdapter(list[QuestionSQL])


class UnusableAnswer(ValueError):
    """The answer parsed but is not what was asked for (reason goes back to the model)."""


class OpenAIChatModel:
    name = "openai"

    def __init__(self, settings: LLMSettings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._endpoint = OpenAIEndpoint(
            settings.base_url,
            settings.api_key.get_secret_value() if settings.api_key else None,
            RetryPolicy(
                timeout_seconds=settings.timeout_seconds,
                max_retries=settings.max_retries,
                backoff_base_seconds=settings.backoff_base_seconds,
                backoff_max_seconds=settings.backoff_max_seconds,
            ),
            session,
        )

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    async def _chat(self, messages: list[dict[str, str]]) -> str:
        s = self._settings
        payload: dict[str, Any] = {"model": s.model, "messages": messages, "temperature": s.temperature}
        if s.max_tokens:
            payload["max_tokens"] = s.max_tokens
        if s.json_mode:
            payload["response_format"] = {"type": "json_object"}
        async with self._semaphore:
            try:
                body = await self._endpoint.post("/chat/completions", payload)
            except OpenAIHTTPError as exc:
                raise LLMError(str(exc), retryable=exc.retryable) from exc
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise UnusableAnswer(f"no choices[0].message.content in {str(body)[:120]}") from exc
        if not isinstance(content, str):
            raise UnusableAnswer("message content is not text")
        return content

    async def _ask(self, kind: str, messages: list[dict[str, str]], parse: Callable[[str], T]) -> T:
        conversation = list(messages)
        attempts = 1 + self._settings.answer_retries
        reason = ""
        for attempt in range(1, attempts + 1):
            try:
                content = await self._chat(conversation)
            except UnusableAnswer as exc:
                reason, content = str(exc), None
            if content is not None:
                try:
                    return parse(content)
                except (JSONExtractionError, ValidationError, UnusableAnswer) as exc:
                    reason = _short(exc)
                conversation = [
                    *messages,
                    {"role": "assistant", "content": content[:4000]},
                    prompts.fix_request(reason),
                ]
            log.warning("llm_unusable_answer", kind=kind, attempt=attempt, reason=reason[:200])
        raise LLMError(f"{kind}: no usable answer after {attempts} attempt(s): {reason}")

    async def describe_table(self, table: TableInfo, business_context: str) -> TableDescription:
        # Names as the table spells them, and case-insensitively: fill_descriptions matches a key such as
        # "channel" to the column "Channel" when that is unambiguous.
        names = {c.name for c in table.columns} | {c.name.lower() for c in table.columns}

        def parse(content: str) -> TableDescription:
            data = as_object(extract_json(content))
            raw = data.get("column_comments")
            if isinstance(raw, dict):
                # A null (or a number) for a column the model skipped costs that column, not the answer.
                data = {**data, "column_comments": {k: v for k, v in raw.items() if isinstance(v, str)}}
            desc = TableDescription.model_validate(data)
            comments = {
                k: v.strip()
                for k, v in desc.column_comments.items()
                if (k in names or k.lower() in names) and v.strip()
            }
            return TableDescription(table_comment=desc.table_comment.strip(), column_comments=comments)

        return await self._ask("describe_table", prompts.describe_table(table, business_context), parse)

    async def propose_themes(self, tables: list[TableInfo], business_context: str, count: int) -> list[Theme]:
        known = {t.name.lower(): t.qualified_name for t in tables} | {
            t.qualified_name.lower(): t.qualified_name for t in tables
        }

        def parse(content: str) -> list[Theme]:
            themes = _THEMES.validate_python(as_list(extract_json(content), "themes"))
            out = []
            for theme in themes:
                related = [known[r.lower()] for r in theme.related_tables if r.lower() in known]
                if related and theme.name.strip():
                    out.append(theme.model_copy(update={"related_tables": list(dict.fromkeys(related))}))
            if not out:
                raise UnusableAnswer("no theme names a table of the schema in related_tables")
            return out[:count]

        return await self._ask(
            "propose_themes", prompts.propose_themes(tables, business_context, count), parse
        )

    async def generate_pairs(
        self, theme: Theme, tables: list[TableInfo], business_context: str, count: int
    ) -> list[QuestionSQL]:
        def parse(content: str) -> list[QuestionSQL]:
            pairs = _PAIRS.validate_python(as_list(extract_json(content), "pairs", "questions"))
            out = []
            for pair in pairs:
                sql = normalize_statement(pair.sql)
                if sql is not None and pair.question.strip():
                    out.append(QuestionSQL(question=pair.question.strip(), sql=sql))
            if not out:
                raise UnusableAnswer("no pair has a question and a single SELECT statement")
            return out[:count]

        return await self._ask(
            "generate_pairs", prompts.generate_pairs(theme, tables, business_context, count), parse
        )

    async def repair_sql(
        self, sql: str, error: str, ddl: str, tables: list[TableInfo], question: str = ""
    ) -> str | None:
        def parse(content: str) -> str | None:
            data = as_object(extract_json(content))
            if "sql" not in data:
                raise UnusableAnswer('the object has no "sql" key')
            fixed = data["sql"]
            if fixed is None or (isinstance(fixed, str) and not fixed.strip()):
                return None
            if not isinstance(fixed, str):
                raise UnusableAnswer('"sql" must be a string or null')
            statement = normalize_statement(fixed)
            if statement is None:
                raise UnusableAnswer('"sql" must be one SELECT/WITH statement')
            return statement

        return await self._ask("repair_sql", prompts.repair_sql(sql, error, ddl, tables, question), parse)

    async def summarize_scope(self, tables: list[TableInfo], business_context: str) -> str:
        def parse(content: str) -> str:
            data = as_object(extract_json(content))
            summary = data.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                raise UnusableAnswer('"summary" must be non-empty text')
            return summary.strip() + "\n"

        return await self._ask("summarize_scope", prompts.summarize_scope(tables, business_context), parse)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)[:300]
