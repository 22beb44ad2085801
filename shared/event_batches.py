"""Which of a producer's events share one broker message (shared.messages.EventBatch).

A batch is routed by its last event, so an event rides ahead of another only where every queue that
binds the first selectively binds the second too (shared.topology.routed_alike): nobody misses an
event because it travelled under another's routing key.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.messages import MAX_BATCH_EVENTS, EventBatch, EventEnvelope
from shared.topology import routed_alike


def batched(events: Sequence[EventEnvelope]) -> list[EventEnvelope | EventBatch]:
    """`events` (in publish order) as few messages as the routing allows, each task's in its order."""
    by_task: dict[str, list[list[EventEnvelope]]] = {}
    for event in events:
        runs = by_task.setdefault(event.task_id, [])
        if (
            runs
            and len(runs[-1]) < MAX_BATCH_EVENTS
            and all(routed_alike(e.type, event.type) for e in runs[-1])
        ):
            runs[-1].append(event)
        else:
            runs.append([event])
    return [
        run[0] if len(run) == 1 else EventBatch(events=tuple(run))
        for runs in by_task.values()
        for run in runs
    ]
