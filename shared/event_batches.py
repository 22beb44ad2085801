"""Which of a producer's events share one broker message (shared.messages.EventBatch).

A batch is routed by its last event, so an event rides ahead of another only where every queue that
binds the first selectively binds the second too (shared.topology.routed_alike): nobody misses an
event because it travelled under another's routing key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from shared.messages import MAX_BATCH_EVENTS, CommandEnvelope, EventBatch, EventEnvelope
from shared.topology import routed_alike


def batched(
    events: Sequence[EventEnvelope], orders: Mapping[uuid.UUID, CommandEnvelope] | None = None
) -> list[EventEnvelope | EventBatch]:
    """`events` (in publish order) as few messages as the routing allows, each task's in its order.

    `orders` maps a `step_scheduled` event's id to the `run_step` command carrying it out: that event ends
    its message, which carries the command (a step order, shared.messages.EventBatch).
    """
    orders = orders or {}
    by_task: dict[str, list[list[EventEnvelope]]] = {}
    for event in events:
        runs = by_task.setdefault(event.task_id, [])
        if (
            runs
            and len(runs[-1]) < MAX_BATCH_EVENTS
            and runs[-1][-1].event_id not in orders
            and all(routed_alike(e.type, event.type) for e in runs[-1])
        ):
            runs[-1].append(event)
        else:
            runs.append([event])
    return [_message(run, orders.get(run[-1].event_id)) for runs in by_task.values() for run in runs]


def _message(run: list[EventEnvelope], order: CommandEnvelope | None) -> EventEnvelope | EventBatch:
    if order is None and len(run) == 1:
        return run[0]
    return EventBatch(events=tuple(run), command=order)
