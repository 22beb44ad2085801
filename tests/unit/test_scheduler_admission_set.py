"""The scheduler admits from `admissible` only (issue 11): the ids of its pending and running tasks, kept
up to date on every state change, instead of scanning every task it holds. The set must never miss a
task that `admit` would consider, nor keep one that it would not (finished, deleted, evicted)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.scheduler.domain import in_admission
from services.scheduler.handlers import Scheduler
from shared.commands import CreateTask, DeleteTask, RunStep
from shared.events import StepStarted, StepSucceeded
from tests.unit.test_scheduler_service import (
    DDL,
    POLICY,
    Harness,
    _created_state,
    params,
)

TWO = replace(POLICY, max_concurrent_tasks=2)
A, B, C, D = (f"task_20240101_12000{i}_{c * 6}" for i, c in enumerate("abcd"))


@pytest.mark.parametrize(
    ("status", "admitted"),
    [
        ("pending", True),
        ("in_progress", True),
        ("awaiting_review", False),
        ("partial_completed", False),
        ("completed", False),
        ("failed", False),
        ("cancelled", False),
    ],
)
def test_in_admission_is_pending_or_in_progress_and_not_deleted(status: str, admitted: bool) -> None:
    state = replace(_created_state(), status=status)
    assert in_admission(state) is admitted
    assert in_admission(replace(state, deleted=True)) is False


def _projection(scheduler: Scheduler) -> set[str]:
    return {t for t, s in scheduler.states.items() if in_admission(s)}


async def _one_step_task(h: Harness, task_id: str) -> None:
    await h.command(CreateTask(parameters=params(execution_mode="single", single_step=1)), task_id)


async def _finish(h: Harness, task_id: str) -> None:
    """The runner runs the task's one scheduled step to success."""
    (step,) = [c.payload for _, c in h.publisher.commands if c.task_id == task_id]
    assert isinstance(step, RunStep)
    await h.runner(task_id, StepStarted(step=step.step, execution_id=step.execution_id, runner_id="r1"))
    await h.runner(task_id, StepSucceeded(step=step.step, execution_id=step.execution_id))


async def test_a_finished_task_leaves_the_set_and_frees_its_slot_for_a_waiting_one() -> None:
    h = Harness(policy=TWO)
    for task_id in (A, B, C):
        await _one_step_task(h, task_id)
    assert [h.state(t).status for t in (A, B, C)] == ["in_progress", "in_progress", "pending"]
    assert h.scheduler.admissible == {A, B, C}

    await _finish(h, A)
    assert h.state(A).status == "completed" and A in h.scheduler.states  # kept in memory for a while
    assert h.state(C).status == "in_progress"  # admitted into A's slot
    assert h.publisher.commands[-1][1].task_id == C and h.run_steps()[-1].step == DDL
    assert h.scheduler.admissible == {B, C} == _projection(h.scheduler)


async def test_a_deleted_waiting_task_leaves_the_set_and_is_never_started() -> None:
    h = Harness(policy=TWO)
    for task_id in (A, B, D):
        await _one_step_task(h, task_id)
    await h.command(DeleteTask(), D)
    assert D not in h.scheduler.admissible
    assert h.scheduler.admissible == _projection(h.scheduler) == {A, B}
    await _finish(h, A)
    assert [c.task_id for _, c in h.publisher.commands] == [A, B]  # the freed slot did not go to D


async def test_eviction_and_a_rebuild_leave_nothing_stale_in_the_set() -> None:
    h = Harness(policy=TWO)
    for task_id in (A, B, C):
        await _one_step_task(h, task_id)
    await _finish(h, A)
    await _finish(h, B)
    h.now += timedelta(minutes=11)  # finished tasks are kept 10 minutes
    h.scheduler._evict()
    assert A not in h.scheduler.states and B not in h.scheduler.states
    assert h.scheduler.admissible == _projection(h.scheduler) == {C}

    # A new replica on the same store, its set holding a leftover id: sync rebuilds it from the store.
    second = Harness(policy=TWO, store=h.store)
    second.scheduler.admissible.add(A)
    await second.scheduler.sync()
    assert second.scheduler.admissible == _projection(second.scheduler) == {C}
