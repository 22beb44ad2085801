"""Whether a step order may start without asking the store if it is still wanted (issue 11).

Before every step the runner asked PostgreSQL whether the task was deleted or the execution had ended
(adapters/task_records.py). For an order its scheduler issued moments ago that question has one answer:
the scheduler gives each order a window (RunStep.fresh_seconds, scheduler/domain.py `fresh_window`) in
which none of its own decisions can end the execution, and a cancel or a delete, the only other ways,
reach every runner on its control queue. So the store is skipped when the order is younger than its
window, no cancel or delete of the task has reached this runner, and the runner has listened to its
control queue for more than twice the window (a runner that just started or reconnected may have
missed one sent before it listened: the queue is exclusive, so it is gone while the connection is). The
window is half the time the scheduler has; the other half covers the runner's clock running behind.
Everything else (an old or redelivered-late order, an order of a task cancelled or deleted once, an order
from before this field, fresh_seconds 0) asks the store as before.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

# Tasks whose cancel or delete reached this runner, the most recent ones (a bounded memory: an order of a
# task forgotten here is old by then, and old orders ask the store anyway).
REMEMBERED_STOPS = 10_000


class StoppedTasks:
    """Task ids a cancel or delete was heard for, most recent last."""

    def __init__(self, capacity: int = REMEMBERED_STOPS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, task_id: str) -> None:
        self._ids[task_id] = None
        self._ids.move_to_end(task_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids


def needs_store_check(
    window: float, issued_at: datetime, now: datetime, listened_for: float | None, stopped: bool
) -> bool:
    """Whether the runner must ask the store before starting an order (see the module docstring)."""
    if window <= 0 or stopped or listened_for is None or listened_for <= 2 * window:
        return True
    age = (now - issued_at).total_seconds()
    return not -window < age < window
