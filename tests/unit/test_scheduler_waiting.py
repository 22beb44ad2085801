"""A task created by the earlier implementation's create waits for execute (issue #14, item 1).

It is pending but never admitted, so it neither counts against the concurrency limit nor is ever taken
for a zombie; an execute starts it with the plan it names; the training-store options of an execute
hold for that run only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from services.scheduler.domain import admit, decide
from services.scheduler.state import Policy, TaskState, evolve
from shared.commands import CancelTask, ExecuteTask
from shared.events import (
    StepScheduled,
    TaskCancelRequested,
    TaskCreated,
    TaskFinished,
    TaskRerunRequested,
    TaskStarted,
)
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
POLICY = Policy(max_concurrent_tasks=1)


def _params(**overrides: object) -> TaskParameters:
    base: dict[str, object] = {
        "db_connection": "postgresql://user:***@db/shop",
        "business_context": "shop",
        "wait_for_execute": True,
    }
    return TaskParameters(**{**base, **overrides})


def _fold(state: TaskState | None, task_id: str, *payloads: BaseModel, at: datetime = T0) -> TaskState:
    for payload in payloads:
        state = evolve(state, EventEnvelope(task_id=task_id, occurred_at=at, producer="t", payload=payload))
    assert state is not None
    return state


def _created(task_id: str, at: datetime = T0, **overrides: object) -> TaskState:
    event = TaskCreated(
        parameters=_params(**overrides), output_directory=f"/d/{task_id}", steps=list(STEP_ORDER)
    )
    return _fold(None, task_id, event, at=at)


def _execute(state: TaskState, command: ExecuteTask) -> TaskState:
    decisions = decide(state, T0, POLICY, command)
    assert len(decisions) == 1 and isinstance(decisions[0].event, TaskRerunRequested), decisions
    return _fold(state, state.task_id, decisions[0].event)


def test_a_waiting_task_is_not_admitted_and_leaves_the_slot_to_others() -> None:
    waiting = _created("task_20260101_120000_aaaaaa")
    later = _created("task_20260101_120001_bbbbbb", at=T0 + timedelta(seconds=1), wait_for_execute=False)
    assert waiting.waiting and waiting.status == "pending"
    assert admit([waiting], POLICY.max_concurrent_tasks) == []
    # The older waiting task does not hold the only slot: the later ordinary task starts.
    assert admit([waiting, later], POLICY.max_concurrent_tasks) == [later.task_id]


def test_a_waiting_task_is_never_timed_out_nor_a_zombie() -> None:
    waiting = _created("task_20260101_120000_aaaaaa")
    assert decide(waiting, T0 + timedelta(days=30), POLICY) == []


def test_execute_releases_a_waiting_task_with_the_plan_it_names() -> None:
    waiting = _created("task_20260101_120000_aaaaaa")
    state = _execute(waiting, ExecuteTask(execution_mode="single", step=StepName.DDL_GENERATION))
    assert not state.waiting and state.status == "pending"
    assert state.plan == (StepName.DDL_GENERATION,)
    assert not state.parameters.wait_for_execute
    assert admit([state], 1) == [state.task_id]
    started = _fold(state, state.task_id, TaskStarted())
    (decision,) = decide(started, T0, POLICY)
    assert isinstance(decision.event, StepScheduled) and decision.event.step is StepName.DDL_GENERATION


def test_a_second_execute_of_a_released_task_is_ignored_until_it_finishes() -> None:
    state = _execute(_created("task_20260101_120000_aaaaaa"), ExecuteTask(execution_mode="complete"))
    (decision,) = decide(state, T0, POLICY, ExecuteTask(execution_mode="complete"))
    assert not isinstance(decision.event, TaskRerunRequested)


def test_store_options_of_the_create_hold_for_the_first_run_only() -> None:
    waiting = _created("task_20260101_120000_aaaaaa", backup_vector_tables=True, truncate_vector_tables=True)
    first = _execute(waiting, ExecuteTask(execution_mode="complete"))
    assert first.parameters.backup_vector_tables and first.parameters.truncate_vector_tables
    done = _fold(_fold(first, first.task_id, TaskStarted()), first.task_id, TaskFinished(status="completed"))
    again = _execute(done, ExecuteTask(execution_mode="single", step=StepName.TRAINING_LOAD))
    assert not again.parameters.backup_vector_tables and not again.parameters.truncate_vector_tables
    done = _fold(_fold(again, again.task_id, TaskStarted()), again.task_id, TaskFinished(status="completed"))
    asked = _execute(
        done,
        ExecuteTask(execution_mode="complete", backup_vector_tables=True, truncate_vector_tables=False),
    )
    assert asked.parameters.backup_vector_tables and not asked.parameters.truncate_vector_tables


def test_an_execute_on_a_waiting_task_overrides_the_create_options() -> None:
    waiting = _created("task_20260101_120000_aaaaaa", truncate_vector_tables=True)
    state = _execute(waiting, ExecuteTask(execution_mode="complete", truncate_vector_tables=False))
    assert not state.parameters.truncate_vector_tables


def test_a_waiting_task_can_be_cancelled() -> None:
    waiting = _created("task_20260101_120000_aaaaaa")
    (decision,) = decide(waiting, T0, POLICY, CancelTask())
    assert isinstance(decision.event, TaskCancelRequested)
    state = _fold(waiting, waiting.task_id, decision.event)
    events = [d.event for d in decide(state, T0, POLICY)]
    assert isinstance(events[-1], TaskFinished) and events[-1].status == "cancelled"
