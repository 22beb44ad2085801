"""A second stack with the REAL step executors (offline LLM), for tests on the demo business database.

Test modules import the fixtures: `from tests.support.real_stack import real_api, real_env, real_stack
# noqa: F401`. Each importing module gets its own stack, pipeline schema, broker prefix, task directory
root and training schema, all removed when the module's tests are done.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from shared.broker import Topology, delete_topology
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL, PG_URL, drop_training_schema
from tests.e2e.conftest import _wait_ready
from tests.support.api import Api
from tests.support.stack import Stack, free_port

DEMO_TABLES = Path(__file__).resolve().parents[2] / "services/demo_db/tables.txt"


def demo_tables() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in DEMO_TABLES.read_text().splitlines())
    return [line for line in lines if line]


@pytest.fixture(scope="module")
def real_env(
    test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpr_{key}",
        "DP_BROKER_PREFIX": f"dpr.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("real-tasks")),
        "DP_TRAINING_SCHEMA": f"dpr_{key}_training",
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
    await drop_training_schema(training_schema)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(settings.broker_prefix))


@pytest.fixture
async def real_api(real_stack: Stack, real_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{real_env['DP_HTTP_PORT']}")
