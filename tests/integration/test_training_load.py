"""Step 4 and the training store: idempotent loads, backups, search and stats, and stores created before
the link table (see test_steps_training_sync.py for how re-runs remove stale rows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.step_runner.executors.base import StepError
from services.step_runner.executors.training_load import TrainingLoadExecutor
from shared import training_search, training_stats
from shared.embeddings import EmbeddingSettings, OfflineEmbedder, create_embedder
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.demo_db import demo_db_url  # noqa: F401
from tests.support.pipeline_steps import ddl_step, demo_context

pytestmark = pytest.mark.integration

PAIRS = [
    {"question": "How many customers are there?", "sql": "SELECT count(*) FROM customers"},
    {
        "question": "What is the total revenue per month?",
        "sql": "SELECT date_trunc('month', ordered_at), sum(total_amount) FROM orders GROUP BY 1",
    },
    {
        "question": "Which products have the best average rating?",
        "sql": "SELECT product_id, avg(rating) FROM reviews GROUP BY 1 ORDER BY 2 DESC",
    },
]


@pytest.fixture
async def store_schema(demo_db_url: str) -> AsyncIterator[str]:  # noqa: F811
    schema = f"dp_training_{uuid.uuid4().hex[:8]}"
    yield schema
    conn = await asyncpg.connect(demo_db_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def _loader(url: str, schema: str, **settings: object) -> TrainingLoadExecutor:
    pipeline = PipelineSettings(training_schema=schema, **settings)
    return TrainingLoadExecutor(pipeline, lambda: create_embedder(EmbeddingSettings()), url)


async def test_load_is_idempotent_and_search_finds_nearest(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
    store_schema: str,
) -> None:
    ctx = demo_context(tmp_path, demo_db_url, table_list=["orders", "customers", "reviews"])
    await ddl_step().run(ctx)
    (tmp_path / "qs_demo_20240101_000000_pair.json").write_text(json.dumps(PAIRS))
    (tmp_path / "qs_demo_20240101_000000_pair.json.backup").write_text("[]")  # never loaded

    step4 = ctx.for_step(StepName.TRAINING_LOAD)
    first = await _loader(demo_db_url, store_schema).run(step4)
    assert first["inserted"]["ddl"] == 3 and first["inserted"]["question_sql"] == 3
    assert first["inserted"]["documentation"] >= 3 * 3  # several sections per table

    # a store from before the link table (and so before the store's migrations): stats still work, and
    # the next load adds what it lacks
    conn = await asyncpg.connect(demo_db_url)
    try:
        await conn.execute(
            f"DROP TABLE {store_schema}.training_data_sources; "
            f"ALTER TABLE {store_schema}.training_loads DROP COLUMN removed; "
            f"DROP TABLE {store_schema}.training_migrations"
        )
        assert (await training_stats.stats(conn, store_schema))["last_load"]["removed"] is None
    finally:
        await conn.close()

    second = await _loader(demo_db_url, store_schema, training_backup=True).run(step4)
    assert second["inserted"] == {"ddl": 0, "documentation": 0, "question_sql": 0}
    assert second["removed"] == {"unlinked": second["inserted"], "deleted": second["inserted"]}
    assert second["already_present"] == first["inserted"]
    assert second["store_by_kind"] == first["store_by_kind"]

    conn = await asyncpg.connect(demo_db_url)
    try:
        backup_rows = await conn.fetchval(f"SELECT count(*) FROM {store_schema}.{second['backup_table']}")
        assert backup_rows == sum(first["inserted"].values())

        query = (await OfflineEmbedder(EmbeddingSettings().dimensions).embed([PAIRS[1]["question"]]))[0]
        found = await training_search.search(conn, store_schema, query, 2)
        assert found["question_sql"][0]["sql"] == PAIRS[1]["sql"]
        assert found["question_sql"][0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert found["question_sql"][0]["score"] > found["question_sql"][1]["score"]
        assert len(found["ddl"]) == 2 and len(found["documentation"]) == 2

        only_ddl = await training_search.search(conn, store_schema, query, 1, kinds=["ddl"])
        assert list(only_ddl) == ["ddl"]
        reviews = (await OfflineEmbedder(EmbeddingSettings().dimensions).embed(["reviews rating product"]))[0]
        nearest_ddl = await training_search.search(conn, store_schema, reviews, 1, kinds=["ddl"])
        assert nearest_ddl["ddl"][0]["table_name"] == "public.reviews"
        with pytest.raises(ValueError, match="unknown kinds"):
            await training_search.search(conn, store_schema, query, 1, kinds=["tables"])

        stats = await training_stats.stats(conn, store_schema)
        assert stats["by_kind"] == first["store_by_kind"] and stats["total"] == sum(
            first["inserted"].values()
        )
        assert stats["by_task"][0]["task_id"] == ctx.task_id
        assert stats["last_load"]["backup_table"] == second["backup_table"]
        assert stats["last_load"]["removed"] == second["removed"]
        linked = await conn.fetchval(
            f"SELECT count(DISTINCT data_id) FROM {store_schema}.training_data_sources"
        )
        assert linked == stats["total"]  # the reload linked the rows it loaded before the table existed
        assert (await training_stats.stats(conn, "dp_no_such_store"))["total"] == 0

        # rows of other sources are never removed by a load
        await conn.execute(
            f"INSERT INTO {store_schema}.training_data (kind, content, content_hash, embedding, dimensions, "
            "source_task_id) VALUES ('documentation', 'hand-written', 'h1', '{1,0}', 2, 'someone_else')"
        )
        await _loader(demo_db_url, store_schema).run(step4)
        assert (
            await conn.fetchval(
                f"SELECT count(*) FROM {store_schema}.training_data WHERE content_hash = 'h1'"
            )
            == 1
        )
    finally:
        await conn.close()


async def test_nothing_to_load_fails(tmp_path: Path, demo_db_url: str, store_schema: str) -> None:  # noqa: F811
    ctx = demo_context(tmp_path, demo_db_url).for_step(StepName.TRAINING_LOAD)
    with pytest.raises(StepError, match="nothing to load"):
        await _loader(demo_db_url, store_schema).run(ctx)
