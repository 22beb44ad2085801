"""The topology on the real broker is what deploy/rabbitmq/definitions.json says, and the shipped policy
applies to a running deployment's queues without a redeclare failing (issue 9, item 11)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from shared.broker import Topology, declare_topology, delete_topology
from tests.conftest import AMQP_URL
from tests.support.eventually import eventually


async def _rabbitmqctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (args, err.decode())
    return out.decode()


async def _listed(kind: str, *columns: str) -> list[dict[str, Any]]:
    return json.loads(await _rabbitmqctl(f"list_{kind}", "-q", "--formatter", "json", *columns))


@pytest.fixture
async def topology(run_id: str) -> AsyncIterator[Topology]:
    topology = Topology(f"dpt.{run_id}.topo{uuid.uuid4().hex[:4]}")
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        try:
            yield topology
        finally:
            set_policies = {
                p["name"]
                for p in json.loads(await _rabbitmqctl("list_policies", "-q", "--formatter", "json"))
            }
            for policy in topology.policies():
                if policy.name in set_policies:
                    await _rabbitmqctl("clear_policy", policy.name)
            await delete_topology(await connection.channel(), topology)


async def test_the_broker_holds_what_the_definitions_say(topology: Topology) -> None:
    definitions = topology.definitions()
    queues = {q["name"]: q for q in await _listed("queues", "name", "arguments", "durable")}
    for expected in definitions["queues"]:
        actual = queues[expected["name"]]
        assert actual["durable"] is True
        assert {k: v for k, _, v in actual["arguments"]} == expected["arguments"], expected["name"]
    exchanges = {x["name"]: x for x in await _listed("exchanges", "name", "type", "durable")}
    for expected in definitions["exchanges"]:
        assert exchanges[expected["name"]]["type"] == expected["type"]
    ours = set(topology.exchanges())
    bindings = {
        (b["source_name"], b["destination_name"], b["routing_key"])
        for b in await _listed("bindings", "source_name", "destination_name", "routing_key")
        if b["source_name"] in ours
    }
    assert bindings == {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}


async def test_the_policy_applies_to_running_queues_and_redeclaring_still_works(topology: Topology) -> None:
    [policy] = topology.policies()
    await _rabbitmqctl(
        "set_policy",
        "--apply-to",
        policy.apply_to,
        "--priority",
        str(policy.priority),
        policy.name,
        policy.pattern,
        json.dumps(policy.definition),
    )
    expected = {topology.scheduler_queue, topology.steps_queue, *topology.collector_queues}

    async def policed() -> dict[str, str] | None:
        queues = {
            q["name"]: q["policy"]
            for q in await _listed("queues", "name", "policy")
            if q["name"] in topology.work_queues()
        }
        return queues if {name for name, p in queues.items() if p == policy.name} == expected else None

    queues = await eventually(policed, timeout=30, interval=0.2, what=f"the policy {policy.name} applied")
    assert queues == {**dict.fromkeys(expected, policy.name), topology.dead_letter_queue: ""}
    # A service starting against the policed queues declares them as before: no PRECONDITION_FAILED.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await declare_topology(await connection.channel(), topology)
