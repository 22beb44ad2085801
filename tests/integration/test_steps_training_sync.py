"""Step 4 keeps the store in step with the task's current files: re-runs of step 1 or 3 that change or
drop an item remove its old row, unless another task still uses it or step 4 never loaded it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.step_runner.executors.training_load import TrainingLoadExecutor
from shared import training_search, training_stats, training_store
from shared.embeddings import EmbeddingSettings, OfflineEmbedder, create_embedder
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.demo_db import demo_db_url  # noqa: F401
from tests.support.step_context import RecordingContext

pytestmark = pytest.mark.integration

ORDERS_DDL = "CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint, total_amount numeric);"
CUSTOMERS_DDL = "CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL);"
ORDERS_DOC = "# public.orders\n\nOne row per order.\n\n## Columns\n\n- total_amount: the order's total\n"
PAIRS = [
    {"question": "How many customers are there?", "sql": "SELECT count(*) FROM customers"},
    # a wrong answer that still plans (one that does not plan is refused by step 4's SQL gate)
    {"question": "What is the total revenue?", "sql": "SELECT sum(total_amount) FROM orders WHERE false"},
    {"question": "How many orders are there?", "sql": "SELECT count(*) FROM orders"},
]
REPAIRED_SQL = "SELECT sum(total_amount) FROM orders"
PAIR_FILE = "qs_demo_20240101_000000_pair.json"
NO_REMOVALS = {
    "unlinked": dict.fromkeys(training_store.KINDS, 0),
    "deleted": dict.fromkeys(training_store.KINDS, 0),
}


@pytest.fixture
async def store(demo_db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, str]]:  # noqa: F811
    schema = f"dp_training_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(demo_db_url)
    try:
        yield conn, schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def _task(root: Path, task_id: str, url: str, files: dict[str, str]) -> RecordingContext:
    task_dir = root / task_id
    task_dir.mkdir()
    for name, text in files.items():
        (task_dir / name).write_text(text)
    parameters = TaskParameters(db_connection=url, business_context="A shop")
    return RecordingContext(task_dir, parameters, url, step=StepName.TRAINING_LOAD, task_id=task_id)


async def _load(ctx: RecordingContext, schema: str) -> dict[str, Any]:
    settings = PipelineSettings(training_schema=schema)
    return await TrainingLoadExecutor(settings, lambda: create_embedder(EmbeddingSettings()), ctx.db_url).run(
        ctx
    )


async def _rows(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    """{content or SQL: id} of every stored row."""
    rows = await conn.fetch(f"SELECT id, coalesce(sql, content) AS text FROM {schema}.training_data")
    return {r["text"]: r["id"] for r in rows}


def _files(pairs: list[dict[str, str]], orders_ddl: str = ORDERS_DDL) -> dict[str, str]:
    return {
        "public_orders.ddl": orders_ddl,
        "public_customers.ddl": CUSTOMERS_DDL,
        "public_orders_detail.md": ORDERS_DOC,
        PAIR_FILE: json.dumps(pairs),
    }


async def test_reload_replaces_repaired_pair_and_keeps_everything_else(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
    store: tuple[asyncpg.Connection, str],
) -> None:
    conn, schema = store
    a = _task(tmp_path, "task_a", demo_db_url, _files(PAIRS))
    first = await _load(a, schema)
    assert first["inserted"] == {"ddl": 2, "documentation": 2, "question_sql": 3}
    assert first["removed"] == NO_REMOVALS
    before = await _rows(conn, schema)

    again = await _load(a, schema)  # unchanged files: nothing changes
    assert sum(again["inserted"].values()) == 0 and again["removed"] == NO_REMOVALS
    assert await _rows(conn, schema) == before

    # a row step 4 never loaded (no link), even one claiming this task as its source
    await conn.execute(
        f"INSERT INTO {schema}.training_data (kind, content, question, sql, content_hash, embedding, "
        "dimensions, source_task_id) VALUES ('question_sql', 'Old question?', 'Old question?', "
        "'SELECT 1 FROM legacy', 'legacy', '{1,0}', 2, 'task_a')"
    )

    # step 3 re-run repairs pair 2 and rewrites the pair file
    repaired = [*PAIRS[:1], {**PAIRS[1], "sql": REPAIRED_SQL}, *PAIRS[2:]]
    (a.task_dir / PAIR_FILE).write_text(json.dumps(repaired))
    third = await _load(a, schema)
    assert third["inserted"] == {"ddl": 0, "documentation": 0, "question_sql": 1}
    assert third["removed"]["unlinked"]["question_sql"] == third["removed"]["deleted"]["question_sql"] == 1
    assert any("1 stale rows unlinked from the task, 1 of them deleted" in m for m in a.messages("INFO"))
    after = await _rows(conn, schema)
    assert PAIRS[1]["sql"] not in after and REPAIRED_SQL in after
    assert "SELECT 1 FROM legacy" in after
    unchanged = {text: row_id for text, row_id in before.items() if text != PAIRS[1]["sql"]}
    assert {text: after[text] for text in unchanged} == unchanged  # same rows, same ids

    query = (await OfflineEmbedder(EmbeddingSettings().dimensions).embed([PAIRS[1]["question"]]))[0]
    found = await training_search.search(conn, schema, query, 10, kinds=["question_sql"])
    assert found["question_sql"][0]["sql"] == REPAIRED_SQL
    assert PAIRS[1]["sql"] not in {r["sql"] for r in found["question_sql"]}

    stats = await training_stats.stats(conn, schema)
    assert stats["last_load"]["removed"] == third["removed"]
    assert stats["total"] == len(before) + 1  # the repaired pair replaced the broken one, plus the legacy row


async def test_row_shared_with_another_task_stays_until_no_task_uses_it(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
    store: tuple[asyncpg.Connection, str],
) -> None:
    conn, schema = store
    a = _task(tmp_path, "task_a", demo_db_url, _files(PAIRS))
    b = _task(tmp_path, "task_b", demo_db_url, {"public_orders.ddl": ORDERS_DDL})
    await _load(a, schema)
    assert (await _load(b, schema))["already_present"]["ddl"] == 1
    shared_id = (await _rows(conn, schema))[ORDERS_DDL]

    # step 1 re-run for A changed the orders DDL: B still uses the old one
    (a.task_dir / "public_orders.ddl").write_text(ORDERS_DDL.replace("numeric", "numeric(12, 2)"))
    reloaded = await _load(a, schema)
    assert reloaded["inserted"]["ddl"] == 1
    assert reloaded["removed"]["unlinked"]["ddl"] == 1 and reloaded["removed"]["deleted"]["ddl"] == 0
    assert (await _rows(conn, schema))[ORDERS_DDL] == shared_id

    # B's own re-run drops it: now nobody uses it
    (b.task_dir / "public_orders.ddl").unlink()
    (b.task_dir / "public_customers.ddl").write_text(CUSTOMERS_DDL)
    dropped = await _load(b, schema)
    assert dropped["removed"]["deleted"] == {"ddl": 1, "documentation": 0, "question_sql": 0}
    rows = await _rows(conn, schema)
    assert ORDERS_DDL not in rows and CUSTOMERS_DDL in rows  # A's customers row, now shared with B
    links = await conn.fetch(
        f"SELECT task_id FROM {schema}.training_data_sources WHERE data_id = $1 ORDER BY task_id",
        rows[CUSTOMERS_DDL],
    )
    assert [r["task_id"] for r in links] == ["task_a", "task_b"]


async def test_row_pruned_while_a_load_was_embedding_is_stored_again(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
    store: tuple[asyncpg.Connection, str],
) -> None:
    conn, schema = store
    b = _task(tmp_path, "task_b", demo_db_url, {"public_orders.ddl": ORDERS_DDL})
    await _load(b, schema)
    a = _task(tmp_path, "task_a", demo_db_url, _files(PAIRS))

    class PruneWhileEmbedding(OfflineEmbedder):
        """A found the orders DDL stored; while it embeds its new items, a re-run of B prunes that row."""

        pruned = False

        async def embed(self, texts: list[str]) -> list[list[float]]:
            if not self.pruned:
                self.pruned = True
                await conn.execute(f"DELETE FROM {schema}.training_data WHERE content = $1", ORDERS_DDL)
            return await super().embed(texts)

    embedder = PruneWhileEmbedding(EmbeddingSettings().dimensions)
    settings = PipelineSettings(training_schema=schema)
    loaded = await TrainingLoadExecutor(settings, lambda: embedder, demo_db_url).run(a)
    assert embedder.pruned
    assert loaded["inserted"]["ddl"] == 2  # the pruned orders DDL was embedded and stored again
    assert any("removed by a concurrent load" in m for m in a.messages("INFO"))
    links = await conn.fetch(
        f"SELECT l.task_id FROM {schema}.training_data_sources l JOIN {schema}.training_data d "
        "ON d.id = l.data_id WHERE d.content = $1",
        ORDERS_DDL,
    )
    assert [r["task_id"] for r in links] == ["task_a"]


async def test_concurrent_loads_keep_what_either_task_uses(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
    store: tuple[asyncpg.Connection, str],
) -> None:
    conn, schema = store
    a = _task(tmp_path, "task_a", demo_db_url, _files(PAIRS))
    b = _task(tmp_path, "task_b", demo_db_url, {"public_orders.ddl": ORDERS_DDL})
    await asyncio.gather(_load(a, schema), _load(b, schema))
    (a.task_dir / "public_orders.ddl").unlink()  # A drops the shared DDL while B loads it again
    await asyncio.gather(_load(a, schema), _load(b, schema))
    links = await conn.fetch(
        f"SELECT l.task_id FROM {schema}.training_data_sources l JOIN {schema}.training_data d "
        "ON d.id = l.data_id WHERE d.content = $1",
        ORDERS_DDL,
    )
    assert [r["task_id"] for r in links] == ["task_b"]
