"""What the RabbitMQ console shows of a running stack (issue 9, item 11): every queue's name says whose it
is, also the per-connection ones (a runner's cancel notices, a gateway stream)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api

pytestmark = pytest.mark.e2e


async def _queue_names() -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "list_queues", "-q", "--formatter", "json", "name",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    return [q["name"] for q in json.loads(out)]


async def test_per_connection_queues_are_named_after_their_owner(api: Api, stack_env: dict[str, str]) -> None:
    prefix = re.escape(stack_env["DP_BROKER_PREFIX"])
    names = await _queue_names()
    for runner in ("runner-a", "runner-b"):
        assert [n for n in names if re.fullmatch(rf"{prefix}\.runner-control\.{runner}\.[0-9a-f]{{8}}", n)], (
            names
        )

    task_id = await api.create(DB_URL, business_context="sleep:ddl_generation=3")
    await api.wait_step(task_id, "ddl_generation", "running")
    async with api.session.get(f"{api.url}{BASE}/tasks/{task_id}/logs", params={"follow": "true"}) as resp:
        assert resp.status == 200
        await resp.content.readline()  # the stream is open: its queue exists
        stream = rf"{prefix}\.stream\.{task_id}\.[0-9a-f]{{8}}"
        assert [n for n in await _queue_names() if re.fullmatch(stream, n)]
    await api.wait(task_id)
