"""The OpenAI-compatible provider and embedder against a real HTTP server started in the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from services.step_runner.llm.base import LLMError, Theme
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.openai_provider import OpenAIChatModel
from services.step_runner.llm.settings import LLMSettings
from shared.embeddings import EmbeddingError, EmbeddingSettings, OpenAIEmbedder, create_embedder
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.shop_catalog import shop_tables

CONTEXT = "An online shop"
KEY = "sk-test-secret-key"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def _settings(server: FakeOpenAI, **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "provider": "openai",
        "base_url": server.base_url,
        "api_key": KEY,
        "model": "fake-model",
        "timeout_seconds": 2.0,
        "max_retries": 2,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "concurrency": 2,
    }
    values.update(overrides)
    return LLMSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def model(server: FakeOpenAI) -> AsyncIterator[OpenAIChatModel]:
    llm = create_llm(_settings(server))
    assert isinstance(llm, OpenAIChatModel)
    yield llm
    await llm.aclose()


THEME = Theme(name="Orders", description="Order volumes", related_tables=["orders", "customers"])


async def test_every_port_method_over_http(server: FakeOpenAI, model: OpenAIChatModel) -> None:
    tables = shop_tables()
    desc = await model.describe_table(tables[2], CONTEXT)
    assert set(desc.column_comments) == {c.name for c in tables[2].columns}
    themes = await model.propose_themes(tables, CONTEXT, 3)
    assert len(themes) == 3 and all(t.related_tables for t in themes)
    pairs = await model.generate_pairs(THEME, tables, CONTEXT, 8)
    assert len(pairs) == 8 and all(p.sql.endswith(";") for p in pairs)
    sqls = [p.sql for p in pairs]
    assert 'SELECT "Channel" FROM "orders" LIMIT 7;' in sqls  # a mixed-case column survives
    assert (
        await model.repair_sql("SELECT nope FROM orders;", 'column "nope" does not exist', "", tables) is None
    )
    server.script(Reply.json({"sql": "SELECT id FROM orders"}), task="repair_sql")
    assert await model.repair_sql("SELECT nope FROM orders;", "err", "", tables) == "SELECT id FROM orders;"
    assert "orders" in await model.summarize_scope(tables, CONTEXT)

    tasks = [r.task for r in server.chat_requests()]
    assert tasks[:5] == ["describe_table", "propose_themes", "generate_pairs", "repair_sql", "repair_sql"]
    first = server.chat_requests()[0]
    assert first.authorization == f"Bearer {KEY}"
    assert first.body["model"] == "fake-model"
    assert "CREATE TABLE orders (" in first.body["messages"][1]["content"]


async def test_themes_are_limited_to_known_tables(server: FakeOpenAI, model: OpenAIChatModel) -> None:
    server.script(
        Reply.json(
            {
                "themes": [
                    {"name": "Ghost", "description": "x", "related_tables": ["ghosts"]},
                    {
                        "name": "Sales",
                        "description": "y",
                        "related_tables": ["ORDERS", "ghosts", "customers"],
                    },
                ]
            }
        )
    )
    themes = await model.propose_themes(shop_tables(), CONTEXT, 5)
    assert [(t.name, t.related_tables) for t in themes] == [("Sales", ["orders", "customers"])]


async def test_malformed_answer_is_re_asked(server: FakeOpenAI, model: OpenAIChatModel) -> None:
    server.script(Reply.text("Sorry, I cannot produce JSON today."), task="generate_pairs")
    pairs = await model.generate_pairs(THEME, shop_tables(), CONTEXT, 2)
    assert len(pairs) == 2
    requests = server.chat_requests("generate_pairs")
    assert len(requests) == 2
    retry_messages = requests[1].body["messages"]
    assert retry_messages[-2] == {"role": "assistant", "content": "Sorry, I cannot produce JSON today."}
    assert "could not be used" in retry_messages[-1]["content"]


async def test_always_malformed_answers_end_in_llm_error(server: FakeOpenAI) -> None:
    llm = OpenAIChatModel(_settings(server, answer_retries=1))
    try:
        server.script(
            Reply.json({"pairs": [{"question": "q", "sql": "DELETE FROM orders;"}]}), Reply.text("{bad")
        )
        with pytest.raises(LLMError) as info:
            await llm.generate_pairs(THEME, shop_tables(), CONTEXT, 2)
        assert not info.value.retryable
        assert len(server.chat_requests()) == 2
    finally:
        await llm.aclose()


async def test_rate_limit_respects_retry_after(server: FakeOpenAI, model: OpenAIChatModel) -> None:
    server.script(Reply.error(429, retry_after="1"))
    started = time.monotonic()
    summary = await model.summarize_scope(shop_tables(), CONTEXT)
    assert summary.strip()
    assert time.monotonic() - started >= 0.9  # waited as told, not the 0.05 s backoff
    assert len(server.chat_requests()) == 2


async def test_server_errors_are_retried(server: FakeOpenAI, model: OpenAIChatModel) -> None:
    server.script(Reply.error(500), Reply.error(503))
    assert await model.summarize_scope(shop_tables(), CONTEXT)
    assert len(server.chat_requests()) == 3


async def test_timeouts_are_retried_then_raise_a_retryable_llm_error(server: FakeOpenAI) -> None:
    llm = OpenAIChatModel(_settings(server, timeout_seconds=0.3, max_retries=2))
    try:
        server.script(Reply.hang(3), Reply.hang(3), Reply.hang(3))
        started = time.monotonic()
        with pytest.raises(LLMError) as info:
            await llm.summarize_scope(shop_tables(), CONTEXT)
        assert info.value.retryable
        assert "did not answer within" in str(info.value)
        assert KEY not in str(info.value)
        assert len(server.chat_requests()) == 3
        assert time.monotonic() - started < 2.5
    finally:
        await llm.aclose()


async def test_client_errors_are_not_retried(server: FakeOpenAI) -> None:
    llm = OpenAIChatModel(_settings(server, api_key="wrong-key"))
    try:
        with pytest.raises(LLMError) as info:
            await llm.summarize_scope(shop_tables(), CONTEXT)
        assert not info.value.retryable
        assert "401" in str(info.value) and "wrong-key" not in str(info.value)
        assert len(server.requests) == 0  # rejected before it was recorded
    finally:
        await llm.aclose()


async def test_concurrency_bound_is_respected(server: FakeOpenAI) -> None:
    server.delay_seconds = 0.1
    llm = OpenAIChatModel(_settings(server, concurrency=3))
    try:
        await asyncio.gather(*(llm.summarize_scope(shop_tables(), CONTEXT) for _ in range(10)))
    finally:
        await llm.aclose()
    assert server.max_in_flight == 3


async def test_embeddings_over_http(server: FakeOpenAI) -> None:
    settings = EmbeddingSettings(
        provider="openai",
        base_url=server.base_url,
        api_key=KEY,
        model="fake-embed",
        dimensions=12,
        batch_size=4,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )
    embedder = create_embedder(settings)
    try:
        server.script(Reply.error(429, retry_after="0"), endpoint="embeddings")
        texts = [f"text {i}" for i in range(10)]
        vectors = await embedder.embed(texts)
        assert len(vectors) == 10 and all(len(v) == 12 for v in vectors)
        assert vectors == await embedder.embed(texts)
        batches = [r for r in server.requests if r.path.endswith("/embeddings")]
        assert [len(r.body["input"]) for r in batches[:4]] == [4, 4, 4, 2]  # the 429 was retried
        assert batches[0].body["dimensions"] == 12
    finally:
        await embedder.aclose()


async def test_embedding_dimension_mismatch_is_an_error(server: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(
        EmbeddingSettings(
            provider="openai", base_url=server.base_url, api_key=KEY, dimensions=8, send_dimensions=False
        )
    )
    try:
        with pytest.raises(EmbeddingError, match="dimensions"):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
