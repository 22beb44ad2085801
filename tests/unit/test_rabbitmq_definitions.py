"""deploy/rabbitmq/definitions.json is the Topology of shared/broker.py (issue 9, item 11)."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pytest

from scripts.rabbitmq_definitions import render
from shared.broker import Topology

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy/rabbitmq/definitions.json"


def test_shipped_definitions_are_the_topology() -> None:
    text = DEFINITIONS.read_text(encoding="utf-8")
    assert json.loads(text) == Topology("dp").definitions(), (
        "regenerate: python scripts/rabbitmq_definitions.py > deploy/rabbitmq/definitions.json"
    )
    assert text == render("dp", "/")


def test_every_queue_and_exchange_is_described_and_bound_where_it_is_declared() -> None:
    topology = Topology("dp")
    definitions = topology.definitions()
    assert [q["name"] for q in definitions["queues"]] == [q.name for q in topology.queue_specs()]
    assert sorted(q["name"] for q in definitions["queues"]) == sorted(topology.work_queues())
    assert sorted(x["name"] for x in definitions["exchanges"]) == sorted(topology.exchanges())
    assert all(spec.purpose for spec in [*topology.queue_specs(), *topology.exchange_specs()])
    bound = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    scheduler_events = ("step_started", "step_heartbeat", "step_succeeded", "step_failed", "step_cancelled")
    assert bound == {
        ("dp.dlx", "dp.dead_letter", "dp.dead_letter"),
        ("dp.commands", "dp.scheduler", "scheduler"),
        *(("dp.events", "dp.scheduler", f"task.*.{t}.#") for t in scheduler_events),
        ("dp.commands", "dp.steps", "steps"),
        ("dp.events", "dp.steps", "steps"),  # step orders, by their CC header
        *(("dp.events", f"dp.collector.{s % 4}", f"task.*.*.{s}") for s in range(64)),
    }


def test_every_partition_slot_is_bound_to_exactly_one_partition_queue() -> None:
    for partitions in (1, 2, 3, 4, 7, 64):
        topology = Topology("dp", partitions)
        slots = sorted(s for p in range(partitions) for s in topology.partition_slots(p))
        assert slots == list(range(64)), partitions
        assert len(topology.collector_queues) == partitions
    with pytest.raises(ValueError):
        Topology("dp", 65)


def test_routing_keys_carry_a_slot_of_the_task_id_only() -> None:
    from shared.events import LogEmitted, StepHeartbeat
    from shared.messages import EventEnvelope, partition_slot

    task_id = "task_20260101_000000_abcdef"
    keys = [
        EventEnvelope(task_id=task_id, producer="t", payload=p).routing_key
        for p in (
            LogEmitted(level="INFO", message="x"),
            StepHeartbeat(step="ddl_generation", execution_id="e", runner_id="r"),
        )
    ]
    slot = partition_slot(task_id)
    assert keys == [f"task.{task_id}.log_emitted.{slot}", f"task.{task_id}.step_heartbeat.{slot}"]
    assert (
        partition_slot(task_id) == zlib.crc32(task_id.encode()) % 64
    )  # stable across processes and versions
    assert len({partition_slot(f"task_20260101_000000_{i:06d}") for i in range(1000)}) == 64


def test_the_policy_covers_the_work_queues_only_and_escapes_the_prefix() -> None:
    topology = Topology("a.b")
    [policy] = topology.policies()
    pattern = re.compile(policy.pattern)
    assert [q for q in topology.work_queues() if pattern.search(q)] == [
        "a.b.scheduler",
        "a.b.steps",
        *(f"a.b.collector.{p}" for p in range(4)),
    ]
    assert not pattern.search("axb.steps") and not pattern.search("a.b.steps2")
    assert policy.definition == {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"}


def test_per_connection_queues_are_named_by_owner() -> None:
    topology = Topology("dp")
    assert re.fullmatch(
        r"dp\.runner-control\.runner-a\.[0-9a-f]{8}", topology.runner_control_queue("runner-a")
    )
    assert re.fullmatch(
        r"dp\.stream\.task_20260101_000000\.[0-9a-f]{8}", topology.stream_queue("task_20260101_000000")
    )
