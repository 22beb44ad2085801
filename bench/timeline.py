"""Where a light-load task's time goes, from its events' own times (issue 11, goal 2's p50).

Each event carries `occurred_at`, set by the service that made it when it made it; the bench adds when
its client sent the create and when it first read the task as completed. The services and the bench run
on one host, so one clock orders them all.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import asyncpg

STRETCHES = (
    ("create", "create -> task_created (gateway, scheduler)"),
    ("order", "step_scheduled -> step_started, per step (broker, runner's checks)"),
    ("step", "step_started -> step_succeeded, per step (the no-op step)"),
    ("decide", "step_succeeded -> the next decision, per step (broker, scheduler)"),
    ("seen", "task_finished -> read as completed (collector, the waiting read)"),
)


@dataclass(frozen=True)
class Timed:
    """One light-load task: when its create was sent and when it was first read as completed."""

    task_id: str
    sent: float  # epoch seconds
    seen: float


def stretches(sent: float, seen: float, events: Sequence[tuple[str, datetime]]) -> dict[str, list[float]]:
    """One task's stretches in ms, from its events (type, occurred_at) in store order."""
    out: dict[str, list[float]] = {name: [] for name, _ in STRETCHES}
    times = [(kind, at.timestamp()) for kind, at in events]
    for (kind, at), (next_kind, next_at) in pairwise(times):
        gap = (next_at - at) * 1000
        if kind == "step_scheduled" and next_kind == "step_started":
            out["order"].append(gap)
        elif kind == "step_started" and next_kind == "step_succeeded":
            out["step"].append(gap)
        elif kind == "step_succeeded" and next_kind in ("step_scheduled", "task_finished"):
            out["decide"].append(gap)
    created = next((at for kind, at in times if kind == "task_created"), None)
    finished = next((at for kind, at in times if kind == "task_finished"), None)
    if created is not None:
        out["create"].append((created - sent) * 1000)
    if finished is not None:
        out["seen"].append((seen - finished) * 1000)
    return out


def medians(per_task: Iterable[dict[str, list[float]]]) -> dict[str, float | None]:
    """Each stretch's median over every task (and every step of them)."""
    pooled: dict[str, list[float]] = {name: [] for name, _ in STRETCHES}
    for one in per_task:
        for name, gaps in one.items():
            pooled[name].extend(gaps)
    return {name: statistics.median(gaps) if gaps else None for name, gaps in pooled.items()}


async def timeline(pg: asyncpg.Connection, timed: Sequence[Timed]) -> dict[str, float | None]:
    rows = await pg.fetch(
        "SELECT task_id, type, occurred_at FROM data_pipeline_events WHERE task_id = ANY($1) ORDER BY seq",
        [t.task_id for t in timed],
    )
    events: dict[str, list[tuple[str, datetime]]] = {t.task_id: [] for t in timed}
    for row in rows:
        events[row["task_id"]].append((row["type"], row["occurred_at"]))
    return medians(stretches(t.sent, t.seen, events[t.task_id]) for t in timed)
