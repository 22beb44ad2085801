"""The four real steps, one after the other, on the demo database: what a complete task produces."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from services.step_runner.registry import default_registry
from shared import training_stats
from shared.settings import RunnerSettings
from shared.steps import STEP_ORDER, StepName, missing_inputs
from tests.support.demo_db import demo_db_url  # noqa: F401
from tests.support.pipeline_steps import demo_context

pytestmark = pytest.mark.integration


async def test_four_steps_end_to_end(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    registry = default_registry(RunnerSettings(database_url=demo_db_url))
    assert set(registry) == set(STEP_ORDER)
    ctx = demo_context(tmp_path, demo_db_url, task_name="chain")
    summaries = {}
    for step in STEP_ORDER:
        assert missing_inputs(step, tmp_path) == []
        step_ctx = ctx.for_step(step)
        summaries[step] = await registry[step].run(step_ctx)
        assert not step_ctx.messages("ERROR")

    assert summaries[StepName.DDL_GENERATION]["tables_succeeded"] == 11
    assert summaries[StepName.QA_GENERATION]["pairs"] >= 20
    validation = summaries[StepName.SQL_VALIDATION]
    assert validation["success_rate_before"] >= 0.95 and validation["invalid_after_repair"] == 0
    loaded = summaries[StepName.TRAINING_LOAD]
    (pair_file,) = tmp_path.glob("qs_*_pair.json")
    pairs = json.loads(pair_file.read_text())
    assert loaded["inserted"]["ddl"] == 11 and loaded["inserted"]["question_sql"] == len(pairs)

    schema = loaded["schema"]
    conn = await asyncpg.connect(demo_db_url)
    try:
        stats = await training_stats.stats(conn, schema)
        assert stats["by_kind"]["question_sql"] == len(pairs)
        # step 4 again is a no-op
        again = await registry[StepName.TRAINING_LOAD].run(ctx.for_step(StepName.TRAINING_LOAD))
        assert sum(again["inserted"].values()) == 0
        assert (await training_stats.stats(conn, schema))["total"] == stats["total"]
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
