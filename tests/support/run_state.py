"""Removing what one test stack left behind: its pipeline schema and its broker queues and exchanges."""

from __future__ import annotations

import aio_pika

from shared.broker import Topology, delete_topology
from shared.migrate import drop_schema
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL


async def remove_run_state(settings: CommonSettings) -> None:
    await drop_schema(settings)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(settings.broker_prefix))
