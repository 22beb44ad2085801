"""The broker's topology: exchanges, queues, bindings and policies, described once.

`shared.broker.declare_topology` declares it; `Topology.definitions` renders it for the RabbitMQ console
(deploy/rabbitmq/definitions.json is that document for the default prefix and partition count).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from shared.messages import PARTITION_SLOTS

SCHEDULER_KEY = "scheduler"
STEPS_KEY = "steps"
DELIVERY_LIMIT = 10
DEFAULT_COLLECTOR_PARTITIONS = 4
# What the scheduler hears from others: the step runners' outcomes and liveness. Its own decisions
# (task_*, step_scheduled, ...) it applies when it makes them, and a replica taking over reads them from
# the event store; log lines, progress and outputs never change a decision (state.evolve ignores them;
# progress only refreshes liveness, which the runner's heartbeats do on their own clock).
SCHEDULER_EVENT_TYPES = ("step_started", "step_heartbeat", "step_succeeded", "step_failed", "step_cancelled")
# What each step runner's own control queue hears: stop a task's step if it runs here.
RUNNER_CONTROL_EVENT_TYPES = ("task_cancel_requested", "task_deleted")
# The queues that bind some event types only; a collector partition and a gateway stream take every event
# of their tasks.
_SELECTIVE_BINDINGS = (frozenset(SCHEDULER_EVENT_TYPES), frozenset(RUNNER_CONTROL_EVENT_TYPES))


def routed_alike(leading: str, last: str) -> bool:
    """May an event of type `leading` travel in a message routed by an event of type `last` (a batch is
    routed by its last event)? Only if every queue binding `leading` selectively binds `last` too."""
    return all(last in types for types in _SELECTIVE_BINDINGS if leading in types)


@dataclass(frozen=True)
class Topology:
    prefix: str
    collector_partitions: int = DEFAULT_COLLECTOR_PARTITIONS

    def __post_init__(self) -> None:
        if not 1 <= self.collector_partitions <= PARTITION_SLOTS:
            raise ValueError(f"collector partitions must be 1-{PARTITION_SLOTS}")

    @property
    def commands_exchange(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def events_exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def scheduler_queue(self) -> str:
        return f"{self.prefix}.scheduler"

    @property
    def steps_queue(self) -> str:
        return f"{self.prefix}.steps"

    @property
    def collector_queues(self) -> list[str]:
        """One queue per partition; a task's events all go to partition slot(task_id) % partitions."""
        return [self.collector_partition_queue(p) for p in range(self.collector_partitions)]

    def collector_partition_queue(self, partition: int) -> str:
        return f"{self.prefix}.collector.{partition}"

    def partition_slots(self, partition: int) -> list[int]:
        return [s for s in range(PARTITION_SLOTS) if s % self.collector_partitions == partition]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead_letter"

    # Per-connection queues (exclusive, auto-delete): named so the console says whose they are.

    def runner_control_queue(self, runner_id: str) -> str:
        """A step runner's cancel/delete notices (task_cancel_requested, task_deleted)."""
        return f"{self.prefix}.runner-control.{runner_id}.{uuid.uuid4().hex[:8]}"

    def stream_queue(self, task_id: str) -> str:
        """One gateway stream's (SSE) copy of a task's events."""
        return f"{self.prefix}.stream.{task_id}.{uuid.uuid4().hex[:8]}"

    def work_queues(self) -> list[str]:
        return [self.scheduler_queue, self.steps_queue, *self.collector_queues, self.dead_letter_queue]

    def exchanges(self) -> list[str]:
        return [self.commands_exchange, self.events_exchange, self.dead_letter_exchange]

    # The one description of the topology: `declare_topology` declares it, `definitions` renders it for
    # the RabbitMQ console (deploy/rabbitmq/definitions.json is that file for the default prefix).

    def exchange_specs(self) -> list[ExchangeSpec]:
        return [
            ExchangeSpec(self.commands_exchange, "direct", "commands: `scheduler` and `steps` routing keys"),
            ExchangeSpec(
                self.events_exchange,
                "topic",
                "every task event, routing key task.<task_id>.<type>.<slot> (slot: crc32(task_id) % 64)",
            ),
            ExchangeSpec(self.dead_letter_exchange, "fanout", "dead letters of the work queues"),
        ]

    def queue_specs(self) -> list[QueueSpec]:
        return [
            QueueSpec(
                self.dead_letter_queue,
                {"x-queue-type": "quorum"},
                # fanout: the key routes nothing; it is the queue's name, as aio-pika bound it before
                ((self.dead_letter_exchange, self.dead_letter_queue),),
                "messages that did not parse or failed DELIVERY_LIMIT deliveries; should be empty",
            ),
            QueueSpec(
                self.scheduler_queue,
                _quorum_args(self, **{"x-single-active-consumer": True}),
                (
                    (self.commands_exchange, SCHEDULER_KEY),
                    *((self.events_exchange, f"task.*.{t}.#") for t in SCHEDULER_EVENT_TYPES),
                ),
                "the scheduler's commands and the step runners' outcomes and heartbeats; one replica "
                "consumes, the other waits",
            ),
            QueueSpec(
                self.steps_queue,
                _quorum_args(self),
                # The scheduler's step orders come from the events exchange (their CC header names this
                # key); a run_step sent alone, from the commands exchange.
                ((self.commands_exchange, STEPS_KEY), (self.events_exchange, STEPS_KEY)),
                "step orders (step_scheduled with its run_step command): steps waiting for a step runner",
            ),
            *(
                QueueSpec(
                    self.collector_partition_queue(p),
                    _quorum_args(self, **{"x-single-active-consumer": True}),
                    tuple((self.events_exchange, f"task.*.*.{s}") for s in self.partition_slots(p)),
                    f"partition {p} of {self.collector_partitions} of the task events on their way to the "
                    "event store and read models; one collector replica consumes it at a time",
                )
                for p in range(self.collector_partitions)
            ),
        ]

    def policies(self) -> list[BrokerPolicy]:
        """Settings added after the queues existed travel as policies: a new queue argument would make
        every redeclare of a running deployment's queues fail with PRECONDITION_FAILED."""
        work = "|".join(
            re.escape(q) for q in (self.scheduler_queue, self.steps_queue, *self.collector_queues)
        )
        return [
            BrokerPolicy(
                name=f"{self.prefix}.work-queues.dead-letter-at-least-once",
                pattern=f"^({work})$",
                definition={"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"},
                purpose="a message is removed from a work queue only once the dead-letter queue has it",
            ),
        ]

    def definitions(self, vhost: str = "/") -> dict[str, Any]:
        """The topology as a RabbitMQ definitions document (console: Overview > Import definitions;
        `rabbitmqctl import_definitions`). No users or permissions: those are the operator's."""
        return {
            "rabbit_version": "3.13",
            "exchanges": [
                {
                    "name": x.name,
                    "vhost": vhost,
                    "type": x.type,
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                }
                for x in self.exchange_specs()
            ],
            "queues": [
                {
                    "name": q.name,
                    "vhost": vhost,
                    "durable": True,
                    "auto_delete": False,
                    "arguments": q.arguments,
                }
                for q in self.queue_specs()
            ],
            "bindings": [
                {
                    "source": exchange,
                    "vhost": vhost,
                    "destination": q.name,
                    "destination_type": "queue",
                    "routing_key": key,
                    "arguments": {},
                }
                for q in self.queue_specs()
                for exchange, key in q.bindings
            ],
            "policies": [
                {
                    "name": p.name,
                    "vhost": vhost,
                    "pattern": p.pattern,
                    "apply-to": p.apply_to,
                    "priority": p.priority,
                    "definition": p.definition,
                }
                for p in self.policies()
            ],
        }


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    type: str  # direct, topic or fanout
    purpose: str


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing key)
    purpose: str


@dataclass(frozen=True)
class BrokerPolicy:
    name: str
    pattern: str
    definition: dict[str, Any]
    purpose: str
    apply_to: str = "queues"
    priority: int = 0


def _quorum_args(topology: Topology, **extra: Any) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-delivery-limit": DELIVERY_LIMIT,
        **extra,
    }
