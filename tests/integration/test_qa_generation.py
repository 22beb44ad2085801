"""Step 2 end to end on a catalog in a temporary task directory; its SQL runs in a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.step_runner.executors.base import StepError
from services.step_runner.executors.qa_generation import QaGenerationExecutor
from services.step_runner.llm.base import LLMError, QuestionSQL, TableDescription, Theme
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.offline.provider import OfflineTextToSQLModel
from services.step_runner.pipeline.catalog import TableInfo
from shared.parameters import TaskParameters
from shared.steps import StepName
from tests.support.fake_openai import FakeOpenAI
from tests.support.shop_catalog import SHOP_DDL, shop_catalog
from tests.support.step_context import RecordingContext

OFFLINE = OfflineTextToSQLModel  # the factory of the default provider

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONTEXT = "An online shop: customers, orders and products"


@pytest.fixture
async def scratch() -> AsyncIterator[asyncpg.Connection]:
    """A connection whose search_path is a fresh schema holding the shop tables; dropped afterwards."""
    schema = f"qa_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(SHOP_DDL)
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def _task_dir(tmp_path: Path, *, with_catalog: bool = True) -> Path:
    task_dir = tmp_path / "task_20250101_000000"
    task_dir.mkdir()
    catalog = shop_catalog(CONTEXT)
    if with_catalog:
        (task_dir / "schema_catalog.json").write_text(catalog.model_dump_json(indent=2), encoding="utf-8")
    for table in catalog.tables:
        (task_dir / f"{table.name}.ddl").write_text(f"CREATE TABLE {table.name} ();\n", encoding="utf-8")
        (task_dir / f"{table.name}_detail.md").write_text(f"## {table.name}\n", encoding="utf-8")
    return task_dir


def _context(task_dir: Path, **params: object) -> RecordingContext:
    defaults: dict[str, object] = {
        "db_connection": "postgresql://app@db.example/shop",
        "business_context": CONTEXT,
        "theme_count": 3,
        "questions_per_theme": 6,
    }
    parameters = TaskParameters.model_validate(defaults | params)
    return RecordingContext(task_dir, parameters, "postgresql://unused", step=StepName.QA_GENERATION)


def _clock(second: int):  # type: ignore[no-untyped-def]
    return lambda: datetime(2025, 3, 4, 5, 6, second, tzinfo=UTC)


async def _explain_all(conn: asyncpg.Connection, pairs: list[dict[str, str]]) -> None:
    for pair in pairs:
        await conn.execute("EXPLAIN " + pair["sql"].rstrip(";"))


async def test_writes_pairs_and_theme_files_whose_sql_runs(
    tmp_path: Path, scratch: asyncpg.Connection
) -> None:
    task_dir = _task_dir(tmp_path)
    ctx = _context(task_dir)
    summary = await QaGenerationExecutor(LLMSettings(), OFFLINE, clock=_clock(7)).run(ctx)

    pair_name = "qs_shop_20250304_050607_pair.json"
    assert summary["pair_file"] == pair_name
    assert summary["themes"] == 3 and summary["provider"] == "offline"
    pairs = json.loads((task_dir / pair_name).read_text(encoding="utf-8"))
    assert summary["pairs"] == len(pairs) >= 15  # 3 themes x 6, minus duplicates across themes
    # Each pair names its theme (the review screen filters by it).
    assert all(set(p) == {"question", "sql", "theme"} and p["sql"].endswith(";") for p in pairs)
    assert len({p["question"] for p in pairs}) == len(pairs)
    await _explain_all(scratch, pairs)

    assert ctx.outputs[pair_name]["is_primary"] and ctx.outputs["metadata.txt"]["is_primary"]
    assert not ctx.outputs["metadata_detail.md"]["is_primary"]
    assert "db_query_decision_prompt.txt" in ctx.outputs
    assert "customers" in (task_dir / "db_query_decision_prompt.txt").read_text(encoding="utf-8")
    assert ctx.progress_calls[-1][0] == 100
    assert [p for p, _ in ctx.progress_calls] == sorted(p for p, _ in ctx.progress_calls)

    await scratch.execute((task_dir / "metadata.txt").read_text(encoding="utf-8"))
    rows = await scratch.fetch("SELECT topic_name, related_tables FROM metadata ORDER BY id")
    assert [r["topic_name"] for r in rows] == summary["theme_names"]
    assert all(r["related_tables"] for r in rows)
    assert not [p for p in task_dir.iterdir() if p.name.startswith(".")]  # no temp file left behind


async def test_rerun_leaves_exactly_one_pair_file(tmp_path: Path) -> None:
    task_dir = _task_dir(tmp_path)
    await QaGenerationExecutor(LLMSettings(), OFFLINE, clock=_clock(1)).run(_context(task_dir))
    first = "qs_shop_20250304_050601_pair.json"
    assert [p.name for p in task_dir.glob("qs_*_pair.json*")] == [first]
    (task_dir / (first + ".backup")).write_text("[]", encoding="utf-8")  # as step 3 leaves it
    (task_dir / "qs_other_20990101_000000_pair.json").write_text("[]", encoding="utf-8")  # a stray copy
    (task_dir / first).write_text("[]", encoding="utf-8")  # so the re-run's pairs are seen to replace it

    # The re-run writes under the registered name, so the task lists one pair file, primary, with the new
    # pairs: a new name would leave the first one registered as primary too (issue #14, item 10).
    ctx = _context(task_dir, questions_per_theme=4)
    summary = await QaGenerationExecutor(LLMSettings(), OFFLINE, clock=_clock(2)).run(ctx)
    assert [p.name for p in task_dir.glob("qs_*_pair.json*")] == [first]
    assert summary["pair_file"] == first
    assert [n for n in ctx.outputs if n.startswith("qs_")] == [first] and ctx.outputs[first]["is_primary"]
    pairs = json.loads((task_dir / first).read_text(encoding="utf-8"))
    assert len(pairs) == summary["pairs"] > 0

    # The registered name stays even when the task's db_name changed since: one pair file, not two.
    ctx = _context(task_dir, db_name="shop db")
    summary = await QaGenerationExecutor(LLMSettings(), OFFLINE, clock=_clock(3)).run(ctx)
    assert [p.name for p in task_dir.glob("qs_*_pair.json*")] == [first] == [summary["pair_file"]]


async def test_first_run_names_the_pair_file_by_database_and_time(tmp_path: Path) -> None:
    task_dir = _task_dir(tmp_path)
    summary = await QaGenerationExecutor(LLMSettings(), OFFLINE, clock=_clock(2)).run(
        _context(task_dir, db_name="shop db")
    )
    assert summary["pair_file"] == "qs_shop_db_20250304_050602_pair.json"
    assert [p.name for p in task_dir.glob("qs_*_pair.json*")] == [summary["pair_file"]]


class _TrickyThemes(OfflineTextToSQLModel):
    """Offline answers, but with themes whose text needs escaping in SQL."""

    async def propose_themes(self, tables: list[TableInfo], business_context: str, count: int) -> list[Theme]:
        return [
            Theme(
                name="Kids' games & {toys}",
                description='Back\\slash, "quotes", comma, and a\nnew line',
                related_tables=["products", "order_items"],
                entities=["kid's game", "{brace}", 'a "b"', ""],
                metrics=[],
            )
        ]


async def test_metadata_escapes_text_and_arrays(tmp_path: Path, scratch: asyncpg.Connection) -> None:
    task_dir = _task_dir(tmp_path)
    executor = QaGenerationExecutor(LLMSettings(), llm_factory=lambda: _TrickyThemes())
    await executor.run(_context(task_dir))
    await scratch.execute((task_dir / "metadata.txt").read_text(encoding="utf-8"))
    row = await scratch.fetchrow("SELECT * FROM metadata")
    assert row["topic_name"] == "Kids' games & {toys}"
    assert row["description"] == 'Back\\slash, "quotes", comma, and a\nnew line'
    assert row["related_tables"] == ["products", "order_items"]
    assert row["biz_entities"] == ["kid's game", "{brace}", 'a "b"', ""]
    assert row["biz_metrics"] == []
    assert "Kids' games" in (task_dir / "metadata_detail.md").read_text(encoding="utf-8")


async def test_missing_step1_outputs_fail_with_a_reason(tmp_path: Path) -> None:
    task_dir = _task_dir(tmp_path, with_catalog=False)
    with pytest.raises(StepError, match=r"schema_catalog\.json") as info:
        await QaGenerationExecutor(LLMSettings(), OFFLINE).run(_context(task_dir))
    assert not info.value.retryable
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StepError, match=r"\.ddl"):
        await QaGenerationExecutor(LLMSettings(), OFFLINE).run(_context(empty))
    (task_dir / "schema_catalog.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StepError, match="cannot be read"):
        await QaGenerationExecutor(LLMSettings(), OFFLINE).run(_context(task_dir))


class _NoPairs(OfflineTextToSQLModel):
    closed = False

    async def generate_pairs(
        self, theme: Theme, tables: list[TableInfo], business_context: str, count: int
    ) -> list[QuestionSQL]:
        raise LLMError("rate limited", retryable=True)

    async def describe_table(self, table: TableInfo, business_context: str) -> TableDescription:
        raise AssertionError("not used by step 2")

    async def aclose(self) -> None:
        _NoPairs.closed = True


async def test_no_pairs_is_a_step_error_and_the_model_is_closed(tmp_path: Path) -> None:
    task_dir = _task_dir(tmp_path)
    ctx = _context(task_dir)
    executor = QaGenerationExecutor(LLMSettings(), llm_factory=lambda: _NoPairs())
    with pytest.raises(StepError, match="no question/SQL pair") as info:
        await executor.run(ctx)
    assert info.value.retryable
    assert _NoPairs.closed
    assert len(ctx.messages("WARNING")) == 3
    assert not list(task_dir.glob("qs_*"))


async def test_runs_against_an_openai_compatible_server(tmp_path: Path, scratch: asyncpg.Connection) -> None:
    task_dir = _task_dir(tmp_path)
    async with FakeOpenAI(delay_seconds=0.05) as server:
        settings = LLMSettings(provider="openai", base_url=server.base_url, model="fake", concurrency=2)
        summary = await QaGenerationExecutor(settings, lambda: create_llm(settings)).run(_context(task_dir))
        assert server.max_in_flight <= 2
        tasks = [r.task for r in server.chat_requests()]
    assert tasks.count("propose_themes") == 1 and tasks.count("generate_pairs") == 3
    assert summary["provider"] == "openai" and summary["pairs"] == 18
    pairs = json.loads((task_dir / summary["pair_file"]).read_text(encoding="utf-8"))
    await _explain_all(scratch, pairs)


@pytest.mark.parametrize("context", [CONTEXT, "一个网上商城的客户、订单与商品数据"])
async def test_every_offline_statement_explains(context: str, scratch: asyncpg.Connection) -> None:
    model = OfflineTextToSQLModel()
    tables = shop_catalog(context).tables
    statements = {
        pair.sql
        for theme in await model.propose_themes(tables, context, 12)
        for pair in await model.generate_pairs(theme, tables, context, 60)
    }
    assert len(statements) > 40
    await _explain_all(scratch, [{"sql": sql} for sql in sorted(statements)])
