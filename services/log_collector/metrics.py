"""The log collector's Prometheus metrics, built on the registry its bootstrap creates."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

_BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class CollectorMetrics:
    registry: CollectorRegistry
    events_stored: Counter
    batches: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    transient_retries: Counter
    requeued: Counter
    dead_lettered: Counter
    catch_up_failures: Counter
    beats_coalesced: Counter

    @classmethod
    def build(cls, registry: CollectorRegistry | None = None) -> CollectorMetrics:
        """Metrics on `registry`; without one, on a private registry nobody scrapes (tests)."""
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            events_stored=Counter(
                "dp_collector_events_stored",
                "Events of committed batches, by type (redeliveries and coalesced beats included: what was consumed).",
                ["type"],
                registry=registry,
            ),
            batches=Counter(
                "dp_collector_batches_committed",
                "Transactions committed (a batch, or one event while a failed batch is stored one by one).",
                registry=registry,
            ),
            batch_size=Histogram(
                "dp_collector_batch_size",
                "Events per committed batch.",
                buckets=_BATCH_SIZES,
                registry=registry,
            ),
            batch_seconds=Histogram(
                "dp_collector_batch_commit_seconds",
                "Time to store and commit one batch (the successful attempt).",
                registry=registry,
            ),
            transient_retries=Counter(
                "dp_collector_transient_retries",
                "Batch stores retried after a transient error (database or connection down).",
                registry=registry,
            ),
            requeued=Counter(
                "dp_collector_events_requeued",
                "Events handed back to the queue unstored (shutdown during an outage, or a failing event).",
                registry=registry,
            ),
            dead_lettered=Counter(
                "dp_collector_events_dead_lettered",
                "Messages rejected to the dead-letter queue, by reason (malformed, not_an_event).",
                ["reason"],
                registry=registry,
            ),
            catch_up_failures=Counter(
                "dp_collector_log_catch_up_failures",
                "Times the task log files could not be brought up to date after a commit (retried later).",
                registry=registry,
            ),
            beats_coalesced=Counter(
                "dp_collector_beats_coalesced",
                "Heartbeats and progress left out of their batch (neither stored nor applied): a later beat overwrites them.",
                registry=registry,
            ),
        )

    def committed(self, event_types: list[str], seconds: float) -> None:
        """One transaction committed these events (in this order) after `seconds`."""
        self.batches.inc()
        self.batch_size.observe(len(event_types))
        self.batch_seconds.observe(seconds)
        for event_type, count in collections.Counter(event_types).items():
            self.events_stored.labels(event_type).inc(count)
