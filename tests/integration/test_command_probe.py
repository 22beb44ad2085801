"""The gateway tests' command probe: `none()` sees a command published before it, however late it lands.

The old probe slept 0.05-0.3 s and then looked at its buffer, so a command still in flight passed unseen.
The probe now publishes a marker and requires it to be the next message on the (ordered) queue.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import pytest

from shared.broker import SCHEDULER_KEY, Publisher, Topology, declare_topology
from shared.commands import CancelTask
from shared.ids import new_task_id
from tests.conftest import AMQP_URL
from tests.integration.gateway_fixtures import CommandProbe, commands, gw_topology  # noqa: F401
from tests.support.eventually import eventually


async def test_none_passes_when_nothing_was_published(commands: CommandProbe) -> None:  # noqa: F811
    await commands.none()
    await commands.none()  # its own marker is consumed: a second check starts clean


async def test_none_fails_on_a_command_published_just_before(
    commands: CommandProbe,  # noqa: F811
    gw_topology: Topology,  # noqa: F811
) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        publisher = Publisher(await declare_topology(channel, gw_topology), "test")
        sent = await publisher.command(SCHEDULER_KEY, CancelTask(), new_task_id(datetime.now(UTC)))
        # No wait for delivery: the check right after the publish must still see the command.
        with pytest.raises(AssertionError, match="unexpected command cancel_task"):
            await commands.none()
    # The probe consumed the command, then its marker is still on its way: drain it for the next test.
    marker = await eventually(lambda: None if commands.buffer.empty() else commands.buffer.get_nowait())
    assert isinstance(marker, str), marker
    assert sent.type == "cancel_task"
