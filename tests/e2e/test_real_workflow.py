"""The real four steps through the real services on the demo business database (offline LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import demo_tables, real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


async def _store_count(env: dict[str, str]) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {env['DP_TRAINING_SCHEMA']}.training_data")
    finally:
        await conn.close()


async def test_real_workflow_on_the_demo_database(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    tables = demo_tables()
    task_id = await real_api.create(
        demo_db_url, business_context="An online retail shop", table_list=tables, db_name="shop"
    )
    detail = await real_api.wait(task_id, timeout=240)
    assert detail["status"] == "completed", detail
    task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
    assert len(list(task_dir.glob("*.ddl"))) == len(tables)
    assert len([p for p in task_dir.glob("*_detail.md") if p.name != "metadata_detail.md"]) == len(tables)
    pair_files = list(task_dir.glob("qs_shop_*_pair.json"))
    assert len(pair_files) == 1
    pairs = json.loads(pair_files[0].read_text())
    assert len(pairs) >= 20 and all(p["sql"].rstrip().endswith(";") for p in pairs)
    reports = list(task_dir.glob("sql_validation_*_report.json"))
    assert len(reports) == 1

    status, files = await real_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    names = {f["file_name"] for f in files["data"]["files"]}
    assert pair_files[0].name in names and "metadata.txt" in names

    loaded = await _store_count(real_env)
    assert loaded >= len(tables) + len(pairs)

    # The final report counts what the steps did; the offline provider's calls cost no tokens.
    report = detail["result"]
    steps = report["steps"]
    assert (steps["ddl_generation"]["tables_ok"], steps["ddl_generation"]["tables_failed"]) == (
        len(tables),
        0,
    )
    assert steps["qa_generation"]["pairs"] == len(pairs) and steps["qa_generation"]["themes"] >= 1
    sql = steps["sql_validation"]
    assert sql["sql_total"] == len(pairs) and sql["sql_valid"] + sql["sql_repaired"] == len(pairs)
    assert steps["training_load"]["training_inserted"] == loaded
    assert all(steps[s]["status"] == "completed" and steps[s]["attempts"] == 1 for s in report["plan"])
    primary = {f["file_name"] for f in report["primary_files"]}
    assert {"schema_catalog.json", pair_files[0].name} <= primary
    usage = report["llm_usage"]
    assert usage["calls"] > 0 and usage["total_tokens"] == 0 and usage["cost"] is None
    assert set(usage["by_model"]) == {"offline", "offline-embedding"}

    # Running the load step again adds nothing to the store.
    status, body = await real_api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "single", "single_step": 4}
    )
    assert status == 202, body
    conn = await asyncpg.connect(PG_URL)
    try:

        async def second_load_ended() -> list[asyncpg.Record] | None:
            runs = await conn.fetch(
                f"SELECT status FROM {real_env['DP_DB_SCHEMA']}.data_pipeline_task_executions"
                " WHERE task_id = $1 AND execution_step = 'training_load' ORDER BY id",
                task_id,
            )
            return runs if len(runs) == 2 and runs[1]["status"] in ("completed", "failed") else None

        runs = await eventually(second_load_ended, timeout=120, interval=0.2, what="the second training_load")
    finally:
        await conn.close()
    assert [r["status"] for r in runs] == ["completed", "completed"]
    detail = await real_api.wait(task_id, timeout=120)
    assert detail["status"] == "completed"
    assert await _store_count(real_env) == loaded

    status, found = await real_api.call(
        "POST", "/api/v0/training_data/search", json={"question": "How many orders per month?", "limit": 5}
    )
    assert status == 200, found
    status, stats = await real_api.call("GET", "/api/v0/training_data/stats")
    assert status == 200, stats
