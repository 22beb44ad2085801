"""Fixtures shared by every tier. Each test run gets its own schema and broker prefix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from yarl import URL

from shared.broker import Topology, delete_topology
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings, RunnerSettings

pytest_plugins = ["tests.support.composed_stack"]

RUN_ID = uuid.uuid4().hex[:8]
PG_URL = os.environ.get("DP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("DP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
# The services under test reconnect 1 s after the broker drops them, where a deployment waits aio-pika's
# default 5 s (`reconnect_interval` in DP_RABBITMQ_URL, docs/configuration.md): the tests that drop
# connections wait for the reconnect.
SERVICE_AMQP_URL = str(URL(AMQP_URL).update_query(reconnect_interval=1))


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tasks")


@pytest.fixture(scope="session")
def test_env(run_id: str, data_root: Path) -> Iterator[dict[str, str]]:
    """The DP_* environment of this run: its own schema, training schema, broker prefix and task
    directory root. The training schema goes at the end (services that load training data create it)."""
    env = {
        "DP_DATABASE_URL": PG_URL,
        "DP_RABBITMQ_URL": SERVICE_AMQP_URL,
        "DP_DB_SCHEMA": f"dpt_{run_id}",
        "DP_TRAINING_SCHEMA": f"dpt_{run_id}_training",
        "DP_BROKER_PREFIX": f"dpt.{run_id}",
        "DP_DATA_ROOT": str(data_root),
        "DP_ENCRYPTION_KEY": f"test-key-{run_id}",
        "DP_LOG_FORMAT": "json",
    }
    yield env
    asyncio.run(drop_training_schema(env["DP_TRAINING_SCHEMA"]))


async def drop_training_schema(schema: str) -> None:
    try:
        conn = await asyncpg.connect(PG_URL)
    except OSError:
        return  # no database, so nothing was created in it (a unit-only run)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def common_settings(test_env: dict[str, str]) -> CommonSettings:
    return CommonSettings(**{k[3:].lower(): v for k, v in test_env.items()})


@pytest.fixture(scope="session")
async def migrated(common_settings: CommonSettings) -> AsyncIterator[CommonSettings]:
    await migrate(common_settings)
    yield common_settings
    await drop_schema(common_settings)


async def _deleted_after(topology: Topology) -> AsyncIterator[Topology]:
    """Yields `topology`, then deletes its queues and exchanges."""
    yield topology
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), topology)


@pytest.fixture(scope="session")
async def broker_cleanup(common_settings: CommonSettings) -> AsyncIterator[Topology]:
    """Deletes this run's queues and exchanges at the end of the session."""
    async for topology in _deleted_after(Topology(common_settings.broker_prefix)):
        yield topology


@pytest.fixture
async def own_topology(common_settings: CommonSettings) -> AsyncIterator[Topology]:
    """A broker prefix of the test's own (one collector partition), deleted after it: only the services
    the test starts on it consume there."""
    async for topology in _deleted_after(
        Topology(f"{common_settings.broker_prefix}.{uuid.uuid4().hex[:8]}", 1)
    ):
        yield topology


def runner_settings(
    test_env: dict[str, str], topology: Topology, data_root: Path, **values: object
) -> RunnerSettings:
    """A step runner's settings on `topology`, with the scripted executors (tests/support/fake_executors.py)."""
    return RunnerSettings.model_validate(
        {
            **{k[3:].lower(): v for k, v in test_env.items()},
            "broker_prefix": topology.prefix,
            "collector_partitions": topology.collector_partitions,
            "data_root": data_root,
            "executor_registry": "tests.support.fake_executors:registry",
            **values,
        }
    )


@pytest.fixture
async def pg(migrated: CommonSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": migrated.db_schema})
    yield conn
    await conn.close()
