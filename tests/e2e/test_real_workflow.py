"""The real four steps through the real services on the demo business database (offline LLM)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from shared.broker import Topology, delete_topology
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL, PG_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
DEMO_TABLES = Path(__file__).resolve().parents[2] / "services/step_runner/demo/tables.txt"


@pytest.fixture(scope="module")
def real_env(
    test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpr_{run_id}",
        "DP_BROKER_PREFIX": f"dpr.{run_id}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("real-tasks")),
        "DP_TRAINING_SCHEMA": f"dpr_{run_id}_training",
        "DP_HTTP_PORT": str(free_port()),
        "DP_HEARTBEAT_INTERVAL_SECONDS": "1",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_COLLECTOR_FLUSH_MS": "20",
    }


@pytest.fixture(scope="module")
def real_stack(real_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = CommonSettings(
        database_url=PG_URL, db_schema=real_env["DP_DB_SCHEMA"], broker_prefix=real_env["DP_BROKER_PREFIX"]
    )
    asyncio.run(migrate(settings))
    stack = Stack(real_env, tmp_path_factory.mktemp("real-logs"))
    for name in ("collector", "scheduler", "gateway"):
        stack.start(name)
    stack.start("runner", extra_env={"DP_RUNNER_ID": "real-runner"})
    try:
        asyncio.run(_wait_ready(f"http://127.0.0.1:{real_env['DP_HTTP_PORT']}", stack))
        yield stack
    finally:
        stack.stop_all()
        asyncio.run(_cleanup(settings, real_env["DP_TRAINING_SCHEMA"]))


async def _cleanup(settings: CommonSettings, training_schema: str) -> None:
    await drop_schema(settings)
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {training_schema} CASCADE")
    finally:
        await conn.close()
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(settings.broker_prefix))


@pytest.fixture
async def real_api(real_stack: Stack, real_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{real_env['DP_HTTP_PORT']}")


async def _store_count(real_env: dict[str, str]) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {real_env['DP_TRAINING_SCHEMA']}.training_data")
    finally:
        await conn.close()


async def test_real_workflow_on_the_demo_database(
    real_api: Api,
    real_env: dict[str, str],
    demo_db_url: str,  # noqa: F811
) -> None:
    tables = [t.strip() for t in DEMO_TABLES.read_text().splitlines() if t.strip() and not t.startswith("#")]
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

    # Running the load step again adds nothing to the store.
    status, body = await real_api.call(
        "POST", f"{BASE}/tasks/{task_id}/execute", json={"execution_mode": "single", "single_step": 4}
    )
    assert status == 202, body
    conn = await asyncpg.connect(PG_URL)
    try:
        for _ in range(600):
            runs = await conn.fetch(
                f"SELECT status FROM {real_env['DP_DB_SCHEMA']}.data_pipeline_task_executions"
                " WHERE task_id = $1 AND execution_step = 'training_load' ORDER BY id",
                task_id,
            )
            if len(runs) == 2 and runs[1]["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.2)
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
