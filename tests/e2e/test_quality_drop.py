"""Issue #13 on the real services and steps (offline LLM, demo database): a pair step 3's quality pass
drops never reaches the training store and is listed in the task's final report; with
modify_original_file off, step 4 refuses it itself and lists it in its summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import demo_tables, real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

CARTESIAN = {
    "question": "How many customers and products are there together?",
    "sql": "SELECT count(*) FROM customers c, products p WHERE c.deleted_at IS NULL;",
}


async def _stored_questions(env: dict[str, str]) -> set[str]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(
            f"SELECT question FROM {env['DP_TRAINING_SCHEMA']}.training_data WHERE kind = 'question_sql'"
        )
        return {r["question"] for r in rows}
    finally:
        await conn.close()


async def _steps_3_and_4_finished(api: Api, env: dict[str, str], task_id: str) -> dict[str, Any]:
    """The task's detail once the second run (steps 3-4) has ended, not the first run's terminal state."""
    conn = await asyncpg.connect(PG_URL)
    try:

        async def ended() -> dict[str, Any]:
            status = await conn.fetchval(
                f"SELECT status FROM {env['DP_DB_SCHEMA']}.data_pipeline_task_executions"
                " WHERE task_id = $1 AND execution_step = 'training_load'",
                task_id,
            )
            assert status in ("completed", "failed"), status
            return await api.wait(task_id, timeout=60)

        return await eventually(ended, timeout=240, interval=0.2, what="steps 3-4 to end")
    finally:
        await conn.close()


async def _generate_then_add(
    api: Api, env: dict[str, str], url: str, **params: Any
) -> tuple[str, Path, list]:
    """Steps 1-2, then the bad pairs appended to the pair file (as a user editing it would)."""
    task_id = await api.create(
        url,
        business_context="An online retail shop",
        table_list=demo_tables(),
        db_name="shop",
        to_step=2,
        **params,
    )
    detail = await api.wait(task_id, timeout=240)
    assert detail["status"] == "completed", detail
    (pair_file,) = (Path(env["DP_DATA_ROOT"]) / task_id).glob("qs_shop_*_pair.json")
    generated = json.loads(pair_file.read_text())
    duplicate = {"question": generated[0]["question"].upper(), "sql": generated[1]["sql"]}  # a near-duplicate
    pair_file.write_text(json.dumps([*generated, CARTESIAN, duplicate], ensure_ascii=False))
    status, body = await api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"from_step": 3, "to_step": 4}
    )
    assert status == 202, body
    return task_id, pair_file, generated


async def test_a_dropped_pair_never_reaches_the_store_and_is_reported(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    task_id, pair_file, generated = await _generate_then_add(real_api, real_env, demo_db_url)
    detail = await _steps_3_and_4_finished(real_api, real_env, task_id)
    assert detail["status"] == "completed", detail
    stored = await _stored_questions(real_env)
    assert CARTESIAN["question"] not in stored
    assert generated[0]["question"].upper() not in stored and generated[0]["question"] in stored
    assert CARTESIAN["question"] not in {p["question"] for p in json.loads(pair_file.read_text())}

    quality = detail["result"]["steps"]["sql_validation"]["quality"]
    dropped = {p["question"]: p["flags"] for p in quality["dropped_pairs"]}
    assert "unjoined_multi_table" in dropped[CARTESIAN["question"]]
    assert dropped[generated[0]["question"].upper()] == ["duplicate_question"]
    assert quality["flags"]["unjoined_multi_table"]["action"] == "drop" and quality["applied"]
    report_file = next(pair_file.parent.glob("sql_validation_*_report.json"))
    entries = {e["question"]: e for e in json.loads(report_file.read_text())["quality"]}
    assert entries[CARTESIAN["question"]]["outcome"] == "dropped"


async def test_with_the_file_untouched_step_4_refuses_the_pair(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    task_id, pair_file, _ = await _generate_then_add(
        real_api, real_env, demo_db_url, modify_original_file=False
    )
    detail = await _steps_3_and_4_finished(real_api, real_env, task_id)
    assert detail["status"] == "completed", detail
    assert CARTESIAN["question"] in {p["question"] for p in json.loads(pair_file.read_text())}  # untouched
    assert CARTESIAN["question"] not in await _stored_questions(real_env)
    steps = detail["result"]["steps"]
    assert not steps["sql_validation"]["quality"]["applied"]
    assert steps["training_load"]["pairs_refused"] >= 2
