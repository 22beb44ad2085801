"""rabbitmqctl for tests that drop their own connections only (other runs may share the broker)."""

from __future__ import annotations

import asyncio

from tests.support.eventually import eventually


async def rabbitmqctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, args
    return out.decode()


async def connections_named(name: str) -> list[str]:
    """Erlang pids (what close_connection takes) of the connections with this client-given name."""
    out = await rabbitmqctl("-q", "--no-table-headers", "list_connections", "pid", "client_properties")
    marker = f'{{"connection_name","{name}"}}'
    return [line.split("\t", 1)[0] for line in out.splitlines() if marker in line]


async def close_connections_named(name: str, reason: str) -> list[str]:
    pids = await connections_named(name)
    for pid in pids:
        await rabbitmqctl("close_connection", pid, reason)
    return pids


async def drop_and_await_reconnect(name: str) -> None:
    """Close the one connection named `name` (what a broker restart does to it) and wait until its client
    has opened a new one."""
    (before,) = await connections_named(name)
    await rabbitmqctl("close_connection", before, "test: connection lost")

    async def reconnected() -> list[str] | None:
        after = await connections_named(name)
        return after if after and after != [before] else None

    await eventually(reconnected, timeout=20, interval=0.2, what=f"{name} to reconnect")
