"""The RabbitMQ node `make bench` starts for itself: the deployment's settings, a working broker, and
nothing left behind once it stops (bench/broker_node.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest

from bench.broker_node import DEPLOYED_CONFIG, Node, find_server, listening, private_node

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Path:
    found = find_server()
    if found is None:
        pytest.skip("no rabbitmq-server installed on this machine to start a node with")
    return found


@contextlib.asynccontextmanager
async def _started(server: Path) -> AsyncIterator[Node]:
    """private_node, its start and stop (seconds of waiting) off the event loop the suite shares."""
    manager = private_node(server)
    node = await asyncio.to_thread(manager.__enter__)
    try:
        yield node
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


async def test_the_node_runs_the_deployed_settings_and_is_gone_after(server: Path) -> None:
    deployed = int(re.search(r"raft\.wal_max_size_bytes = (\d+)", DEPLOYED_CONFIG.read_text())[1])
    async with _started(server) as node:
        assert node.wal_max_size_bytes == deployed
        assert Path(f"/proc/{node.pid}/comm").read_text().startswith("beam")
        connection = await aio_pika.connect(node.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue(
                "bench-node-check", durable=True, arguments={"x-queue-type": "quorum"}
            )
            await channel.default_exchange.publish(aio_pika.Message(b"hello"), routing_key=queue.name)
            message = await queue.get(timeout=10)
            assert message.body == b"hello"
            await message.ack()
        data = Path(f"/proc/{node.pid}/cwd").resolve()
    assert not Path(f"/proc/{node.pid}").exists()
    assert not listening(urlsplit(node.url).port or 0)
    assert not data.exists()


def test_a_node_that_cannot_start_says_why_and_leaves_nothing(server: Path, tmp_path: Path) -> None:
    broken = tmp_path / "dp.conf"
    broken.write_text("raft.wal_max_size_bytes = plenty\n")
    before = set(Path(tempfile.gettempdir()).glob("dp-bench-broker-*"))
    with pytest.raises(RuntimeError, match="did not start"), private_node(server, broken):
        pass
    assert set(Path(tempfile.gettempdir()).glob("dp-bench-broker-*")) == before
