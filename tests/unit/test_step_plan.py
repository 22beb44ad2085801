"""Step ranges: which steps a run covers and why the others are left out (scheduler domain, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from services.scheduler.domain import decide, start
from services.scheduler.plans import plan, plan_for, rerun_parameters, skip_reasons
from services.scheduler.state import Policy, TaskState, evolve
from shared.commands import CreateTask, ExecuteTask
from shared.events import (
    StepScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TaskCreated,
    TaskFinished,
    TaskRerunRequested,
)
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER

DDL, QA, SQL, LOAD = STEP_ORDER
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
TASK_ID = "task_20260101_120000_range1"
POLICY = Policy()


def params(**overrides: object) -> TaskParameters:
    base: dict[str, object] = {
        "db_connection": "postgresql://user:***@db/sales",
        "business_context": "sales",
        "table_list": ["orders"],
    }
    return TaskParameters(**{**base, **overrides})


def _apply(state: TaskState | None, *payloads: BaseModel) -> TaskState:
    for payload in payloads:
        state = evolve(state, EventEnvelope(task_id=TASK_ID, occurred_at=T0, producer="t", payload=payload))
    assert state is not None
    return state


def _drive(state: TaskState) -> tuple[TaskState, list[str]]:
    """Run the task to its end as the scheduler and a runner that always succeeds would; which steps ran."""
    ran: list[str] = []
    for _ in range(50):
        decisions = decide(state, T0, POLICY)
        if not decisions:
            return state, ran
        event = decisions[0].event
        state = _apply(state, event)
        if isinstance(event, StepScheduled):
            ran.append(event.step.value)
            state = _apply(
                state,
                StepStarted(step=event.step, execution_id=event.execution_id, runner_id="r"),
                StepSucceeded(step=event.step, execution_id=event.execution_id, summary={}),
            )
    raise AssertionError("the task never settled")


@pytest.mark.parametrize(
    ("first", "last", "steps"),
    [
        (QA, SQL, [QA, SQL]),
        (SQL, LOAD, [SQL, LOAD]),
        (DDL, QA, [DDL, QA]),
        (None, None, list(STEP_ORDER)),
        (SQL, None, [SQL, LOAD]),
        (None, QA, [DDL, QA]),
        (LOAD, LOAD, [LOAD]),
    ],
)
def test_a_range_covers_its_steps_in_order(first: object, last: object, steps: list[object]) -> None:
    assert plan("complete", first=first, last=last) == steps  # type: ignore[arg-type]


def test_a_range_backwards_is_refused_and_single_is_one_step() -> None:
    with pytest.raises(ValueError, match=r"from_step 3 .* comes after to_step 2"):
        plan("complete", first=SQL, last=QA)
    assert plan("single", QA) == [QA]
    assert plan("single", None, first=SQL, last=SQL) == [SQL]


def test_the_plan_of_new_tasks_comes_from_their_parameters() -> None:
    assert plan_for(params()) == list(STEP_ORDER)
    assert plan_for(params(from_step=2, to_step=3)) == [QA, SQL]
    assert plan_for(params(to_step=2)) == [DDL, QA]
    assert plan_for(params(execution_mode="single", single_step=4)) == [LOAD]
    with pytest.raises(ValueError):
        plan_for(params(from_step=4, to_step=1))


def test_skip_reasons_name_the_range_and_the_disabling_parameter() -> None:
    p = params(from_step=2, to_step=4, enable_training_data_load=False)
    assert skip_reasons(p, [QA, SQL, LOAD]) == {
        DDL: "outside the requested range: steps 2-4",
        LOAD: "disabled by enable_training_data_load=false",
    }
    single = params(execution_mode="single", single_step=3, enable_sql_validation=False)
    # Single mode runs what was asked, even a step the parameters disable.
    assert skip_reasons(single, [SQL]) == {
        s: "single mode runs step 3 (sql_validation) only" for s in (DDL, QA, LOAD)
    }
    assert skip_reasons(params(), list(STEP_ORDER)) == {}


def test_create_with_a_range_carries_the_plan_and_runs_only_those_steps() -> None:
    command = CreateTask(parameters=params(from_step=1, to_step=2))
    (decision,) = decide(None, T0, POLICY, command, task_id=TASK_ID)
    event = decision.event
    assert isinstance(event, TaskCreated)
    assert event.steps == [DDL, QA]
    assert event.skipped == {
        SQL: "outside the requested range: steps 1-2",
        LOAD: "outside the requested range: steps 1-2",
    }
    state = _apply(None, event, start().event)
    state, ran = _drive(state)
    assert ran == ["ddl_generation", "qa_generation"]
    assert state.status == "completed"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [(QA, SQL, ["qa_generation", "sql_validation"]), (SQL, LOAD, ["sql_validation", "training_load"])],
)
def test_execute_a_range_of_a_finished_task(first: object, last: object, expected: list[str]) -> None:
    state = _apply(None, TaskCreated(parameters=params(), output_directory="/d", steps=list(STEP_ORDER)))
    state = _apply(state, start().event)
    state, _ = _drive(state)
    assert state.status == "completed"

    command = ExecuteTask(execution_mode="complete", from_step=first, to_step=last)  # type: ignore[arg-type]
    (decision,) = decide(state, T0, POLICY, command)
    rerun = decision.event
    assert isinstance(rerun, TaskRerunRequested)
    assert [s.value for s in rerun.steps] == expected
    assert set(rerun.skipped) == set(STEP_ORDER) - set(rerun.steps)
    state = _apply(state, rerun)
    assert state.parameters.from_step == STEP_ORDER.index(first) + 1  # type: ignore[arg-type]
    assert state.parameters.to_step == STEP_ORDER.index(last) + 1  # type: ignore[arg-type]
    state = _apply(state, start().event)
    state, ran = _drive(state)
    assert ran == expected
    assert state.status == "completed"


def test_a_disabled_step_inside_a_range_is_skipped_with_its_reason() -> None:
    p = params(from_step=3, to_step=4, enable_training_data_load=False)
    (decision,) = decide(None, T0, POLICY, CreateTask(parameters=p), task_id=TASK_ID)
    state = _apply(None, decision.event, start().event)
    emitted: list[BaseModel] = []
    for _ in range(10):
        decisions = decide(state, T0, POLICY)
        if not decisions:
            break
        emitted.append(decisions[0].event)
        state = _apply(state, decisions[0].event)
        if isinstance(decisions[0].event, StepScheduled):
            e = decisions[0].event
            state = _apply(
                state,
                StepStarted(step=e.step, execution_id=e.execution_id, runner_id="r"),
                StepSucceeded(step=e.step, execution_id=e.execution_id, summary={}),
            )
    assert [type(e).__name__ for e in emitted] == ["StepScheduled", "StepSkipped", "TaskFinished"]
    assert emitted[1] == StepSkipped(step=LOAD, reason="disabled by enable_training_data_load=false")
    assert isinstance(emitted[2], TaskFinished) and emitted[2].status == "completed"


def test_an_impossible_range_is_a_warning_not_a_crash() -> None:
    state = _apply(None, TaskCreated(parameters=params(), output_directory="/d", steps=list(STEP_ORDER)))
    state = _apply(state, start().event)
    state, _ = _drive(state)
    (decision,) = decide(
        state, T0, POLICY, ExecuteTask(execution_mode="complete", from_step=LOAD, to_step=DDL)
    )
    assert decision.event.type == "log_emitted"  # type: ignore[attr-defined]
    assert "comes after" in decision.event.message  # type: ignore[attr-defined]


def test_rerun_parameters_record_the_range_and_clear_it_for_the_whole_workflow() -> None:
    p = rerun_parameters(params(from_step=2, to_step=3), "complete", list(STEP_ORDER))
    assert (p.execution_mode, p.single_step, p.from_step, p.to_step) == ("complete", None, None, None)
    p = rerun_parameters(params(), "single", [SQL])
    assert (p.execution_mode, p.single_step, p.from_step, p.to_step) == ("single", 3, None, None)
    p = rerun_parameters(params(execution_mode="single", single_step=1), "complete", [QA, SQL, LOAD])
    assert (p.execution_mode, p.single_step, p.from_step, p.to_step) == ("complete", None, 2, 4)
