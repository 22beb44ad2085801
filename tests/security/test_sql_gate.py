"""Issue #7 findings 7 and 8 through the real services: hostile SQL in pair files meets the real steps 3
(sql_validation) and 4 (training_load).

On the previous main the text filter marked `SELECT "pg_sleep"(600)`, `pg_catalog."pg_sleep"(600)`,
`"pg_sleep_for"('10 minutes')`, `query_to_xml('DELETE …')` and a three-way cross join valid and step 4
loaded them into the shared training store; with `enable_sql_validation: false`, `WITH d AS (DELETE …)
SELECT 1` went straight to the store; and one pair with `$1` failed step 3 (three attempts, "lost the
business database: InterfaceError"). Each is now one invalid verdict with a reason, the steps succeed,
and nothing hostile reaches the store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

HOSTILE = {
    "Sleep, quoted": 'SELECT "pg_sleep"(600)',
    "Sleep, qualified and quoted": 'SELECT pg_catalog."pg_sleep"(600)',
    "Sleep for ten minutes": "SELECT \"pg_sleep_for\"('10 minutes')",
    "Delete through XML": "SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, false, '')",
    "Three-way cross join": "SELECT count(*) FROM order_items a, order_items b, order_items c",
    "Delete in a CTE": "WITH d AS (DELETE FROM orders RETURNING 1) SELECT 1",
    "Update in a CTE": "WITH u AS (UPDATE orders SET status = 'paid' RETURNING 1) SELECT count(*) FROM u",
}
PARAMETER = {"Order by parameter": "SELECT * FROM orders WHERE id = $1"}
REASONS = {
    "Sleep, quoted": "pg_sleep()",
    "Sleep, qualified and quoted": "pg_catalog.pg_sleep()",
    "Sleep for ten minutes": "pg_sleep_for()",
    "Delete through XML": "query_to_xml()",
    "Three-way cross join": "DP_SQL_MAX_PLAN_",
    "Delete in a CTE": "contains DELETE",
    "Update in a CTE": "contains UPDATE",
    "Order by parameter": "parameter $1",
}
# live rows only (orders has deleted_at): step 3's quality pass would otherwise add the filter (issue #13)
VALID = {
    f"How many orders have an id above {i}?": f"SELECT count(*) FROM orders WHERE id > {i} AND deleted_at IS NULL;"
    for i in range(40)
}
PAIR_FILE = "qs_shop_20240101_000000_pair.json"


def _pairs(*groups: dict[str, str]) -> str:
    return json.dumps([{"question": q, "sql": s} for group in groups for q, s in group.items()])


async def _runs(env: dict[str, str], task_id: str, step: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG_URL)
    try:
        return await conn.fetch(
            f"SELECT status, error_message FROM {env['DP_DB_SCHEMA']}.data_pipeline_task_executions"
            " WHERE task_id = $1 AND execution_step = $2 ORDER BY id",
            task_id,
            step,
        )
    finally:
        await conn.close()


async def _run_step(api: Api, env: dict[str, str], task_id: str, number: int, step: str) -> list[Any]:
    """Run one step again and wait for its run to end; every run of that step, oldest first."""
    before = len(await _runs(env, task_id, step))
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "single", "single_step": number}
    )
    assert status == 202, body

    async def ended() -> list[Any] | None:
        runs = await _runs(env, task_id, step)
        return list(runs) if len(runs) > before and runs[-1]["status"] in ("completed", "failed") else None

    runs = await eventually(ended, timeout=120, interval=0.2, what=f"{step} of {task_id} to finish")
    await api.wait(task_id, timeout=60)
    return runs


async def _task_with_pairs(api: Api, env: dict[str, str], url: str, pairs: str, **params: Any) -> Path:
    task_id = await api.create(
        url,
        business_context="An online retail shop",
        table_list=["orders", "order_items"],
        db_name="shop",
        execution_mode="single",
        single_step=1,
        enable_llm_repair=False,
        **params,
    )
    detail = await api.wait(task_id, timeout=120)
    assert detail["status"] == "completed", detail
    task_dir = Path(env["DP_DATA_ROOT"]) / task_id
    (task_dir / PAIR_FILE).write_text(pairs)
    return task_dir


async def _stored_sql(env: dict[str, str]) -> set[str]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(
            f"SELECT sql FROM {env['DP_TRAINING_SCHEMA']}.training_data WHERE kind = 'question_sql'"
        )
    finally:
        await conn.close()
    return {r["sql"] for r in rows}


def _assert_nothing_hostile(stored: set[str]) -> None:
    hostile = {s.rstrip(";") for s in [*HOSTILE.values(), *PARAMETER.values()]}
    assert not {s.rstrip(";") for s in stored} & hostile
    words = re.compile(r"pg_sleep|query_to_xml|\bdelete\b")  # the statement, not the deleted_at column
    assert not any(words.search(s.lower()) for s in stored)


async def test_hostile_statements_are_invalid_verdicts_and_never_reach_the_store(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    task_dir = await _task_with_pairs(real_api, real_env, demo_db_url, _pairs(VALID, HOSTILE, PARAMETER))
    task_id = task_dir.name

    runs = await _run_step(real_api, real_env, task_id, 3, "sql_validation")
    assert [r["status"] for r in runs] == ["completed"], runs  # one run: no retry, no step failure
    (report_path,) = task_dir.glob("sql_validation_*_report.json")
    report = json.loads(report_path.read_text())
    failures = {f["question"]: f for f in report["failures"]}
    assert set(failures) == set(HOSTILE) | set(PARAMETER)
    for question, reason in REASONS.items():
        assert reason in (failures[question]["error"] or ""), failures[question]
    assert report["summary"]["valid_before_repair"] == len(VALID)
    kept = {p["question"] for p in json.loads((task_dir / PAIR_FILE).read_text())}
    assert kept == set(VALID)  # the rewritten pair file holds only what passed

    runs = await _run_step(real_api, real_env, task_id, 4, "training_load")
    assert runs[-1]["status"] == "completed", runs
    stored = await _stored_sql(real_env)
    assert {s.rstrip(";") for s in VALID.values()} <= {s.rstrip(";") for s in stored}
    _assert_nothing_hostile(stored)


async def test_training_load_gates_pairs_even_when_validation_is_disabled(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    valid = {"How many orders are there in all?": "SELECT count(*) FROM orders;"}
    task_dir = await _task_with_pairs(
        real_api, real_env, demo_db_url, _pairs(valid, HOSTILE, PARAMETER), enable_sql_validation=False
    )
    runs = await _run_step(real_api, real_env, task_dir.name, 4, "training_load")
    assert runs[-1]["status"] == "completed", runs
    stored = await _stored_sql(real_env)
    assert "SELECT count(*) FROM orders;" in stored
    _assert_nothing_hostile(stored)
