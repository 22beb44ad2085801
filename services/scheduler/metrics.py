"""The scheduler's Prometheus metrics, built on the registry its bootstrap creates."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.scheduler.state import TaskState
from shared.vocabulary import TASK_STATUSES


@dataclass(frozen=True)
class SchedulerMetrics:
    registry: CollectorRegistry
    decisions: Counter
    tasks: Gauge
    rebuilds: Counter
    ticks: Counter

    @classmethod
    def build(cls, registry: CollectorRegistry | None = None) -> SchedulerMetrics:
        """Metrics on `registry`; without one, on a private registry nobody scrapes (tests)."""
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            decisions=Counter(
                "dp_scheduler_decisions",
                "Events the scheduler emitted (its decisions, including task logs it wrote), by event type.",
                ["type"],
                registry=registry,
            ),
            tasks=Gauge(
                "dp_scheduler_tasks",
                "Tasks held in the scheduler's memory, by status (set on each tick; the standby holds none).",
                ["status"],
                registry=registry,
            ),
            rebuilds=Counter(
                "dp_scheduler_state_rebuilds",
                "Times the in-memory state was rebuilt from the event store (start-up and fail-over).",
                registry=registry,
            ),
            ticks=Counter(
                "dp_scheduler_ticks",
                "Ticks handled (stale ticks from a backlog excluded).",
                registry=registry,
            ),
        )

    def count_tasks(self, states: Iterable[TaskState]) -> None:
        counts: Tally[str] = Tally(state.status for state in states)
        self.tasks.clear()  # no await in between: a scrape never sees the gauge half set
        # Always exported, at 0 when no task has them, so dashboards see every series.
        for status in sorted(set(TASK_STATUSES) | counts.keys()):
            self.tasks.labels(status).set(counts.get(status, 0))
