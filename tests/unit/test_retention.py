"""Retention (issue 9, item 5): which finished tasks lose their log text or files, decided by the
scheduler's pure domain, and the scheduler's tick that carries it out (in-memory ports)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.scheduler.domain import retention
from shared.commands import CreateTask, ExecuteTask
from shared.events import TaskFilesCleaned, TaskLogsPurged
from shared.lifecycle import Finished
from tests.unit.test_scheduler_service import (
    LOAD,
    OTHER,
    POLICY,
    T0,
    TASK,
    Harness,
    MemoryStore,
    params,
)

DAY = timedelta(days=1)
KEEP = replace(POLICY, log_retention=7 * DAY, file_retention=30 * DAY)


def kinds(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(task_id, d.event.type) for task_id, d in decisions]


def test_nothing_is_removed_while_young_or_when_retention_is_off() -> None:
    young = Finished(TASK, T0 - 6 * DAY)
    assert retention([young], T0, KEEP) == []
    old = Finished(TASK, T0 - 400 * DAY)
    assert retention([old], T0, POLICY) == []  # Policy() keeps everything


def test_logs_and_files_have_their_own_periods() -> None:
    tasks = [
        Finished("task_20240101_000000_logs", T0 - 8 * DAY),
        Finished("task_20240101_000000_both", T0 - 31 * DAY),
        Finished("task_20240101_000000_done", T0 - 90 * DAY, logs_purged=True, files_cleaned=True),
        Finished("task_20240101_000000_file", T0 - 31 * DAY, logs_purged=True),
    ]
    assert kinds(retention(tasks, T0, KEEP)) == [
        ("task_20240101_000000_both", "task_logs_purged"),
        ("task_20240101_000000_both", "task_files_cleaned"),
        ("task_20240101_000000_file", "task_files_cleaned"),
        ("task_20240101_000000_logs", "task_logs_purged"),
    ]
    (_, decision), *_ = retention(tasks, T0, KEEP)
    assert isinstance(decision.event, TaskLogsPurged)
    assert decision.event.retention_days == 7 and "more than 7 days ago" in decision.event.reason


def test_busy_tasks_are_left_alone_and_a_pass_is_bounded() -> None:
    tasks = [Finished(f"task_20240101_00000{i}_x", T0 - (40 + i) * DAY) for i in range(5)]
    busy = {tasks[4].task_id}
    decisions = retention(tasks, T0, KEEP, busy=busy, limit=3)
    assert len(decisions) == 3
    assert tasks[4].task_id not in {t for t, _ in decisions}  # the oldest, but running again
    assert decisions[0][0] == tasks[3].task_id  # oldest first


class RetentionStore(MemoryStore):
    """`finished_tasks` with the SQL adapter's rule: last finish after the last start, and what retention
    did since that finish."""

    async def finished_tasks(self, finished_before):  # type: ignore[no-untyped-def]
        out = []
        for task_id in dict.fromkeys(e.task_id for e in self.events):
            events = [e for e in self.events if e.task_id == task_id]
            types = [e.type for e in events]
            if "task_deleted" in types or "task_finished" not in types:
                continue
            finish = max(i for i, t in enumerate(types) if t == "task_finished")
            start = max(i for i, t in enumerate(types) if t in ("task_created", "task_rerun_requested"))
            if start > finish or events[finish].occurred_at >= finished_before:
                continue
            after = types[finish:]
            out.append(
                Finished(
                    task_id,
                    events[finish].occurred_at,
                    "task_logs_purged" in after,
                    "task_files_cleaned" in after,
                )
            )
        return out


async def _finished_task(h: Harness, task_id: str) -> None:
    await h.command(CreateTask(parameters=params(execution_mode="single", single_step=4)), task_id)
    await h.complete(task_id, LOAD)
    assert h.state(task_id).status == "completed"


async def test_the_scheduler_tick_applies_retention_once_per_interval() -> None:
    h = Harness(policy=KEEP, store=RetentionStore())
    h.scheduler.retention_interval = 3600
    await _finished_task(h, TASK)
    h.now += 20 * DAY
    await _finished_task(h, OTHER)  # young: finished just now

    h.now += 10 * DAY + timedelta(minutes=1)  # TASK: 30 days + 1 min; OTHER: 10 days + 1 min
    await h.tick()
    retained = [
        (e.task_id, e.type)
        for e in h.publisher.events
        if isinstance(e.payload, TaskLogsPurged | TaskFilesCleaned)
    ]
    assert retained == [
        (TASK, "task_logs_purged"),
        (TASK, "task_files_cleaned"),
        (OTHER, "task_logs_purged"),
    ]
    before = len(h.publisher.events)
    h.now += timedelta(minutes=30)
    await h.tick()  # within the interval: no pass
    assert len(h.publisher.events) == before
    h.now += timedelta(hours=1)
    await h.tick()  # a pass, but nothing left to do
    assert all(
        not isinstance(e.payload, TaskLogsPurged | TaskFilesCleaned) for e in h.publisher.events[before:]
    )


async def test_a_rerun_starts_the_clock_again() -> None:
    h = Harness(policy=KEEP, store=RetentionStore())
    await _finished_task(h, TASK)
    h.now += 8 * DAY
    await h.command(ExecuteTask(execution_mode="single", step=LOAD), TASK)
    await h.complete(TASK, LOAD)
    h.now += timedelta(hours=1)
    await h.tick()
    assert "task_logs_purged" not in h.types()


class FlakyStore(RetentionStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def finished_tasks(self, finished_before):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database gone")
        return await super().finished_tasks(finished_before)


async def test_a_pass_that_could_not_read_the_store_runs_again_with_the_next_tick() -> None:
    h = Harness(policy=KEEP, store=FlakyStore())
    await _finished_task(h, TASK)
    h.now += 40 * DAY
    with pytest.raises(ConnectionError):
        await h.tick()
    await h.tick()  # the message wrapper retries; here, the next tick
    assert "task_files_cleaned" in h.types()
