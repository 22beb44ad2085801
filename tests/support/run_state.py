"""A test stack of its own (schema and broker prefix), and removing what it left behind: its pipeline
schema and its broker queues and exchanges."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aio_pika

from shared.broker import Topology, delete_topology
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL, PG_URL
from tests.support.stack import Stack


async def remove_run_state(settings: CommonSettings) -> None:
    await drop_schema(settings)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(settings.broker_prefix))


def run_settings(env: dict[str, str]) -> CommonSettings:
    """The settings naming the schema and broker prefix of a stack's environment."""
    return CommonSettings(
        database_url=PG_URL, db_schema=env["DP_DB_SCHEMA"], broker_prefix=env["DP_BROKER_PREFIX"]
    )


@contextmanager
def own_stack(env: dict[str, str], log_dir: Path) -> Iterator[Stack]:
    """A Stack on `env`'s own schema (migrated first) and broker prefix; its services are stopped and
    both removed afterwards."""
    settings = run_settings(env)
    asyncio.run(migrate(settings))
    stack = Stack(env, log_dir)
    try:
        yield stack
    finally:
        stack.stop_all()
        asyncio.run(remove_run_state(settings))
