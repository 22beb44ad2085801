"""Step 1 against the seeded demo database (and a scratch database for awkward names and types)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.demo_db.generator import TABLES
from services.step_runner.executors.base import StepError
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from shared.business_db import BusinessDbError, list_tables
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from tests.support.demo_db import demo_db_url, scratch_db_url  # noqa: F401
from tests.support.step_context import RecordingContext

pytestmark = pytest.mark.integration


def _executor(**settings: object) -> DdlGenerationExecutor:
    return DdlGenerationExecutor(PipelineSettings(**settings), lambda: create_llm(LLMSettings()))


def _ctx(task_dir: Path, url: str, **params: object) -> RecordingContext:
    parameters = TaskParameters(db_connection=url, business_context="retail shop", **params)
    return RecordingContext(task_dir, parameters, url)


async def _run_ddl_in_fresh_schema(conn: asyncpg.Connection, ddl: str) -> None:
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path = {schema}")
            await conn.execute(ddl)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_demo_tables_documented_and_every_ddl_runs(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    ctx = _ctx(tmp_path, demo_db_url, table_list=[*TABLES, "public.orders", "Orders"])
    summary = await _executor().run(ctx)

    assert summary["tables_succeeded"] == len(TABLES) and summary["tables_failed"] == []
    assert summary["partial"] is False and summary["partial_reason"] is None
    assert summary["descriptions_filled"] > 0
    assert (tmp_path / "table_list.txt").read_text().splitlines() == [f"public.{t}" for t in TABLES]
    mapping = (tmp_path / "filename_mapping.txt").read_text()
    assert "public.order_items -> order_items" in mapping
    catalog = json.loads((tmp_path / "schema_catalog.json").read_text())
    assert [t["name"] for t in catalog["tables"]] == list(TABLES)
    assert ctx.outputs["schema_catalog.json"]["is_primary"]
    assert {f"{t}.ddl" for t in TABLES} | {f"{t}_detail.md" for t in TABLES} <= set(ctx.outputs)
    assert ctx.progress_calls[-1][0] == pytest.approx(100.0)

    orders = next(t for t in catalog["tables"] if t["name"] == "orders")
    columns = {c["name"]: c for c in orders["columns"]}
    assert orders["comment"] == "Customer orders, one row per checkout"  # existing comments are kept
    assert columns["channel"]["comment"] == "Where the order was placed: web, app or store"
    assert all(c["comment"] for c in orders["columns"])  # the LLM filled the rest
    assert columns["status"]["enum_values"] == [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ]
    assert columns["channel"]["enum_values"] == ["app", "store", "web"]
    assert columns["order_no"]["enum_values"] is None
    assert orders["estimated_rows"] == 4000 and len(orders["sample_rows"]) == 5
    assert {fk["ref_table"] for fk in orders["foreign_keys"]} == {
        "customers",
        "stores",
        "employees",
        "addresses",
    }
    detail = (tmp_path / "orders_detail.md").read_text()
    assert "## Allowed values" in detail and "## Relationships" in detail

    conn = await asyncpg.connect(demo_db_url)
    try:
        for table in TABLES:  # each file on its own, in an empty schema
            await _run_ddl_in_fresh_schema(conn, (tmp_path / f"{table}.ddl").read_text())
        # all files in one schema, twice in a row: foreign keys appear once their targets exist
        schema = f"scratch_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path = {schema}")
                for table in TABLES:
                    await conn.execute((tmp_path / f"{table}.ddl").read_text())
                fks = await conn.fetchval(
                    "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                    "WHERE n.nspname = $1 AND c.contype = 'f'",
                    schema,
                )
                comment = await conn.fetchval(
                    f"SELECT obj_description('{schema}.orders'::regclass, 'pg_class')"
                )
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()
    assert fks > 0
    assert comment == "Customer orders, one row per checkout"


async def test_missing_table_is_reported_by_name(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    (tmp_path / "tables.txt").write_text("orders\nno_such_table\n")
    ctx = _ctx(tmp_path, demo_db_url, table_list_file="tables.txt")
    summary = await _executor().run(ctx)
    assert summary["tables_succeeded"] == 1
    assert summary["tables_failed"][0]["table"] == "public.no_such_table"
    # Issue 9, item 10: one listed table missing makes the step partial, and the reason names it.
    assert summary["partial"] is True
    assert summary["partial_reason"].startswith("1 of 2 tables not documented")
    assert "public.no_such_table" in summary["partial_reason"]
    assert any("public.no_such_table" in m for m in ctx.messages("WARNING"))
    assert "no_such_table" not in (tmp_path / "filename_mapping.txt").read_text()


async def test_fails_when_no_table_succeeds(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    ctx = _ctx(tmp_path, demo_db_url, table_list=["nope_a", "nope_b"])
    with pytest.raises(StepError, match=r"0 of 2") as info:
        await _executor().run(ctx)
    assert "public.nope_a" in str(info.value) and not info.value.retryable


@pytest.mark.parametrize("name", ["../tables.txt", "sub/tables.txt", "/etc/passwd", "..", ".hidden"])
async def test_table_list_file_must_be_a_bare_name(tmp_path: Path, demo_db_url: str, name: str) -> None:  # noqa: F811
    with pytest.raises(StepError, match="plain file name"):
        await _executor().run(_ctx(tmp_path, demo_db_url, table_list_file=name))


async def test_rerun_replaces_outputs_and_drops_unlisted_tables(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    await _executor().run(_ctx(tmp_path, demo_db_url, table_list=["orders", "stores"]))
    first = (tmp_path / "orders.ddl").read_text()
    (tmp_path / "notes.txt").write_text("mine")
    # A task's names are fixed at creation; its list changes by a new table_list.txt (an upload).
    (tmp_path / "table_list.txt").write_text("orders\n")
    await _executor(ddl_concurrency=1).run(_ctx(tmp_path, demo_db_url, table_list=["orders", "stores"]))
    assert (tmp_path / "orders.ddl").read_text() == first
    assert not (tmp_path / "stores.ddl").exists() and not (tmp_path / "stores_detail.md").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


AWKWARD_SCHEMA = """
CREATE SCHEMA "Sales";
CREATE SCHEMA ops;
CREATE TYPE ops.priority AS ENUM ('low', 'high');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE SEQUENCE ticket_seq;
CREATE FUNCTION next_ticket() RETURNS text LANGUAGE sql AS $$ SELECT 'T' || nextval('ticket_seq') $$;
CREATE TABLE "Sales"."Invoices" (
    "ID" serial PRIMARY KEY,
    "order" integer NOT NULL,
    "user" text,
    qty positive_int NOT NULL DEFAULT 1,
    ticket text NOT NULL DEFAULT next_ticket(),
    prio ops.priority NOT NULL DEFAULT 'low',
    net numeric(10,2),
    gross numeric(10,2) GENERATED ALWAYS AS (net * 1.19) STORED,
    tags text[] DEFAULT '{}'::text[]
);
COMMENT ON TABLE "Sales"."Invoices" IS 'It''s the invoices; -- not a comment';
COMMENT ON COLUMN "Sales"."Invoices"."order" IS E'Line one\\nline two';
CREATE TABLE ops.child (id bigint GENERATED ALWAYS AS IDENTITY, invoice_id integer REFERENCES "Sales"."Invoices" ("ID"));
CREATE VIEW ops.big_invoices AS SELECT * FROM "Sales"."Invoices" WHERE net > 100;
"""


async def test_awkward_names_types_and_defaults(tmp_path: Path, scratch_db_url: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(scratch_db_url)
    try:
        await conn.execute(AWKWARD_SCHEMA)
        await conn.execute(
            """INSERT INTO "Sales"."Invoices" ("order", net) SELECT g, g FROM generate_series(1, 30) g"""
        )
        ctx = _ctx(
            tmp_path, scratch_db_url, table_list=['"Sales"."Invoices"', "ops.child", "ops.big_invoices"]
        )
        summary = await _executor().run(ctx)
        assert summary["tables_succeeded"] == 3, summary
        assert {"Sales__Invoices.ddl", "ops__child.ddl", "ops__big_invoices_detail.md"} <= set(ctx.outputs)
        ddl = (tmp_path / "Sales__Invoices.ddl").read_text()
        assert 'CREATE TABLE "Sales"."Invoices"' in ddl
        assert '"ID" integer GENERATED BY DEFAULT AS IDENTITY' in ddl
        assert "DEFAULT next_ticket()" not in ddl  # a default that needs a missing function is dropped
        assert "default omitted" in ddl and "DEFAULT 1" in ddl
        # every file runs in a database that has none of these objects
        fresh = f"scratch_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE SCHEMA {fresh}")
        async with conn.transaction():
            await conn.execute(
                f'DROP SCHEMA "Sales" CASCADE; DROP SCHEMA ops CASCADE; SET LOCAL search_path = {fresh}'
            )
            for name in ("Sales__Invoices", "ops__child", "ops__big_invoices"):
                await conn.execute((tmp_path / f"{name}.ddl").read_text())
            comment = await conn.fetchval(
                """SELECT obj_description('"Sales"."Invoices"'::regclass, 'pg_class')"""
            )
            fk = await conn.fetchval(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'ops.child'::regclass AND contype = 'f'"
            )
        assert comment == "It's the invoices; -- not a comment"
        assert fk == 1
    finally:
        await conn.close()


async def test_list_tables_and_masked_errors(demo_db_url: str) -> None:  # noqa: F811
    tables = await list_tables(demo_db_url, pattern="order*")
    assert [(t["schema"], t["name"]) for t in tables] == [("public", "order_items"), ("public", "orders")]
    assert tables[1]["estimated_rows"] == 4000 and tables[1]["comment"].startswith("Customer orders")
    assert [t["name"] for t in await list_tables(demo_db_url, schema="public", pattern="ship")] == [
        "shipments"
    ]
    bad = demo_db_url.replace("postgres@", "postgres:s3cret-pw@").rsplit("/", 1)[0] + "/no_such_db_xyz"
    with pytest.raises(BusinessDbError) as info:
        await list_tables(bad)
    # One generic message to the caller (no port scanning through it); the cause goes to the server log.
    assert str(info.value).startswith("cannot connect to the business database (reference ")
    assert "no_such_db_xyz" not in str(info.value) and "s3cret-pw" not in str(info.value)
    assert not info.value.retryable
    with pytest.raises(BusinessDbError) as info:
        await list_tables("postgresql://u:s3cret-pw@127.0.0.1:1/x")
    assert "s3cret-pw" not in str(info.value) and info.value.retryable


async def test_large_tables_are_sampled_not_counted(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    ctx = _ctx(tmp_path, demo_db_url, table_list=["orders", "stores"])
    await _executor(large_table_rows=1000, sample_rows=3).run(ctx)
    catalog = json.loads((tmp_path / "schema_catalog.json").read_text())
    orders = catalog["tables"][0]
    assert orders["estimated_rows"] == 4000 and len(orders["sample_rows"]) == 3
    assert "about 4,000 rows" in (tmp_path / "orders_detail.md").read_text()  # the estimate, not a count
    assert "- Size: 8 rows" in (tmp_path / "stores_detail.md").read_text()
    channel = next(c for c in orders["columns"] if c["name"] == "channel")
    assert channel["enum_values"] == ["app", "store", "web"]


async def test_a_table_list_uploaded_after_creation_wins_over_the_names(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
) -> None:
    """Issue #10 defect 3: a task created with names, then given a list by upload (the gateway writes
    table_list.txt), introspects the uploaded tables on its next run and says so in its log."""
    first = _ctx(tmp_path, demo_db_url, table_list=["orders"])
    await _executor().run(first)
    assert (tmp_path / "table_list.txt").read_text() == "public.orders\n"
    assert not any("given since" in m for m in first.messages())
    (tmp_path / "table_list.txt").write_text("stores\ncustomers\n")
    again = _ctx(tmp_path, demo_db_url, table_list=["orders"])
    summary = await _executor().run(again)
    assert summary["tables_succeeded"] == 2 and summary["tables_failed"] == []
    catalog = json.loads((tmp_path / "schema_catalog.json").read_text())
    assert [t["name"] for t in catalog["tables"]] == ["stores", "customers"]
    assert not (tmp_path / "orders.ddl").exists()
    assert any("table list from table_list.txt (2 tables)" in m for m in again.messages("INFO"))
    assert "table_list.txt" in again.outputs
