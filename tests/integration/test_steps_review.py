"""Steps 1-3 on a second, differently shaped schema (HR and logistics: mixed-case names, non-public
schemas, an enum type, a domain, a composite key, a self-reference, a partitioned table), plus the
read-only and timeout guarantees of step 1 on hostile views."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.demo_db.generator import drop_database, ensure_database
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.demo_db import database_url, scratch_db_url  # noqa: F401
from tests.support.hr_db import HR_SCHEMA, TABLES
from tests.support.pipeline_steps import ddl_step, qa_step, validation_step
from tests.support.step_context import RecordingContext

pytestmark = pytest.mark.integration


def _context(task_dir: Path, url: str, business_context: str, **params: object) -> RecordingContext:
    parameters = TaskParameters(
        db_connection=url, business_context=business_context, table_list=TABLES, **params
    )  # type: ignore[arg-type]
    return RecordingContext(task_dir, parameters, url)


@pytest.mark.parametrize("context", ["HR and logistics of a manufacturer", "一家制造企业的人事与物流数据"])
async def test_second_schema_meets_the_quality_bar(
    tmp_path: Path,
    scratch_db_url: str,  # noqa: F811
    context: str,
) -> None:
    conn = await asyncpg.connect(scratch_db_url)
    try:
        await conn.execute(HR_SCHEMA)
    finally:
        await conn.close()
    ctx = _context(tmp_path, scratch_db_url, context)
    step1 = await ddl_step().run(ctx.for_step(StepName.DDL_GENERATION))
    assert step1["tables_succeeded"] == len(TABLES), step1
    step2 = await qa_step().run(ctx.for_step(StepName.QA_GENERATION))
    assert step2["pairs"] >= 30, step2
    (pair_file,) = tmp_path.glob("qs_*_pair.json")
    pairs = json.loads(pair_file.read_text())
    assert any("status" in p["sql"] and "GROUP BY" in p["sql"] for p in pairs)  # the enum is a category
    # one deliberately broken pair, so step 3 has something to repair
    pairs.append(
        {"question": "Salary per employee", "sql": 'SELECT "FullName", "Salry" FROM "HR"."Employee";'}
    )
    pair_file.write_text(json.dumps(pairs))

    step3 = await validation_step().run(ctx.for_step(StepName.SQL_VALIDATION))
    assert step3["valid_before_repair"] >= 0.95 * (step3["total"] - 1), step3
    assert step3["repaired"] == 1 and step3["success_rate_after"] == 1.0, step3
    validated = json.loads(pair_file.read_text())
    assert len(validated) == len(pairs)
    assert all(p["sql"].rstrip().endswith(";") for p in validated), [p["sql"] for p in validated][-1]
    assert '"Salary"' in validated[-1]["sql"]

    # Every .ddl runs on its own in an empty database, and metadata.txt runs too.
    empty = database_url(f"dp_scratch_{uuid.uuid4().hex[:8]}")
    await ensure_database(empty)
    try:
        conn = await asyncpg.connect(empty)
        try:
            for ddl in sorted(tmp_path.glob("*.ddl")):
                schema = f"s_{uuid.uuid4().hex[:6]}"
                async with conn.transaction():
                    await conn.execute(f"CREATE SCHEMA {schema}; SET LOCAL search_path = {schema}")
                    await conn.execute(ddl.read_text())
                await conn.execute(
                    f'DROP SCHEMA {schema} CASCADE; DROP SCHEMA IF EXISTS "HR" CASCADE;'
                    " DROP SCHEMA IF EXISTS logistics CASCADE"
                )
            async with conn.transaction():
                await conn.execute((tmp_path / "metadata.txt").read_text())
        finally:
            await conn.close()
    finally:
        await drop_database(empty)


HOSTILE = """
CREATE TABLE audit (id serial, at timestamptz DEFAULT now());
CREATE FUNCTION writes() RETURNS int LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit DEFAULT VALUES; RETURN 1; END $$;
CREATE FUNCTION slow() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_sleep(5) $$;
CREATE VIEW writer AS SELECT g AS id, writes() AS w FROM generate_series(1, 3) g;
CREATE VIEW sleeper AS SELECT g AS id, slow() AS s FROM generate_series(1, 3) g;
CREATE TABLE plain (id int PRIMARY KEY, label text);
INSERT INTO plain VALUES (1, 'a');
"""


async def test_step1_never_writes_and_times_out_slow_reads(
    tmp_path: Path,
    scratch_db_url: str,  # noqa: F811
) -> None:
    conn = await asyncpg.connect(scratch_db_url)
    try:
        await conn.execute(HOSTILE)
        parameters = TaskParameters(
            db_connection=scratch_db_url, business_context="x", table_list=["writer", "sleeper", "plain"]
        )
        ctx = RecordingContext(tmp_path, parameters, scratch_db_url)
        step = DdlGenerationExecutor(
            PipelineSettings(statement_timeout_ms=300), lambda: create_llm(LLMSettings())
        )
        started = time.monotonic()
        summary = await step.run(ctx)
        assert time.monotonic() - started < 4.5
        assert summary["tables_succeeded"] == 3, summary
        assert await conn.fetchval("SELECT count(*) FROM audit") == 0
        warnings = " ".join(ctx.messages("WARNING"))
        assert "read-only transaction" in warnings and "statement timeout" in warnings, warnings
    finally:
        await conn.close()


async def test_openai_descriptions_in_any_order_with_unknown_and_null_columns() -> None:
    from services.step_runner.pipeline.descriptions import fill_descriptions
    from tests.support.fake_openai import FakeOpenAI, Reply
    from tests.support.shop_catalog import shop_tables

    orders = shop_tables()[2]  # id, customer_id, status, Channel, ..., created_at has a comment
    async with FakeOpenAI() as server:
        server.script(
            Reply.json(
                {
                    "table_comment": "Orders placed by customers",
                    "column_comments": {
                        "ghost_column": "does not exist",
                        "channel": "Sales channel",  # the column is "Channel"
                        "status": "Order status",
                        "id": None,  # models do answer null for columns they skip
                        "created_at": "must not replace the existing comment",
                        "customer_id": 42,
                    },
                }
            ),
            task="describe_table",
        )
        model = create_llm(LLMSettings(provider="openai", base_url=server.base_url, model="m"))
        try:
            described = await model.describe_table(orders, "shop")
        finally:
            await model.aclose()
        assert len(server.chat_requests("describe_table")) == 1  # usable as it is: not re-asked
    info, _ = fill_descriptions(orders, described)
    comments = {c.name: c.comment for c in info.columns}
    assert comments["Channel"] == "Sales channel"
    assert comments["status"] == "Order status"
    assert comments["id"] is None and comments["customer_id"] is None
    assert comments["created_at"] == "When the order was placed"
    assert info.comment == "Orders placed by customers"
