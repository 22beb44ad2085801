"""`dpctl workflow run`: the scheduler's domain driven in memory, its verdict and exit code.

`drive` is given a scripted `run_step` (what an executor would report) and a list as its sink, so the
whole manual run, from TaskCreated to TaskFinished, runs without a broker, database or LLM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from services.dpctl.workflow import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Emit, drive, exit_code
from services.scheduler.state import TaskState
from shared.commands import CreateTask
from shared.events import (
    FailureCode,
    StepFailed,
    StepScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TaskFinished,
)
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName

DDL, QA, SQL, LOAD = STEP_ORDER
TASK_ID = "manual_20240101_120000_abc123"
Outcome = Callable[[StepScheduled], BaseModel]


def ok(**summary: Any) -> Outcome:
    return lambda s: StepSucceeded(step=s.step, execution_id=s.execution_id, summary=summary)


def fails(error: str, code: str | None = None) -> Outcome:
    return lambda s: StepFailed(step=s.step, execution_id=s.execution_id, error=error, code=code)


async def manual_run(
    outcomes: dict[StepName, Outcome], **overrides: Any
) -> tuple[TaskState, TaskFinished | None, list[EventEnvelope], list[StepName]]:
    parameters = TaskParameters(
        **{"db_connection": "postgresql://u@h/shop", "business_context": "a shop", "table_list": ["t"]}
        | overrides
    )
    published: list[EventEnvelope] = []
    ran: list[StepName] = []

    async def publish(envelope: EventEnvelope) -> None:
        published.append(envelope)

    async def run_step(scheduled: StepScheduled, emit: Emit) -> None:
        ran.append(scheduled.step)
        await emit(StepStarted(step=scheduled.step, execution_id=scheduled.execution_id, runner_id="dpctl"))
        await emit(outcomes.get(scheduled.step, ok())(scheduled))

    create = CreateTask(parameters=parameters, created_by="manual")
    state, finished = await drive(TASK_ID, create, "/data", publish, run_step)
    return state, finished, published, ran


async def test_all_completed_through_the_schedulers_own_facts() -> None:
    state, finished, published, ran = await manual_run({})
    assert ran == list(STEP_ORDER)
    assert (state.status, exit_code(state)) == ("completed", EXIT_OK)
    assert finished == TaskFinished(status="completed", result={s.value: "completed" for s in STEP_ORDER})
    types = [e.type for e in published]
    assert types[:3] == ["task_created", "task_started", "step_scheduled"]
    assert types.count("step_scheduled") == 4 and types[-1] == "task_finished"
    created = published[0].payload
    assert created.created_by == "manual" and created.output_directory == f"/data/{TASK_ID}"  # type: ignore[union-attr]
    assert {e.task_id for e in published} == {TASK_ID} and {e.producer for e in published} == {"dpctl"}


async def test_validation_below_threshold_exits_3_by_its_code_not_its_wording() -> None:
    below = fails("too few valid", FailureCode.VALIDATION_BELOW_THRESHOLD)
    state, finished, _, ran = await manual_run({SQL: below})
    assert ran == [DDL, QA, SQL]  # training_load does not run after a failure
    assert (state.status, exit_code(state)) == ("partial_completed", EXIT_PARTIAL)
    assert finished is not None and finished.error_message == "sql_validation failed: too few valid"
    assert finished.result[LOAD.value] == "pending"
    # A failure that merely mentions a threshold is an ordinary failure.
    state, _, _, _ = await manual_run({SQL: fails("connection threshold exceeded")})
    assert (state.status, exit_code(state)) == ("partial_completed", EXIT_FAILED)


async def test_first_step_failed_and_partial_summary() -> None:
    state, finished, _, ran = await manual_run({DDL: fails("no table could be read")})
    assert ran == [DDL]
    assert (state.status, exit_code(state)) == ("failed", EXIT_FAILED)
    assert finished is not None and finished.error_message == "ddl_generation failed: no table could be read"

    state, finished, _, _ = await manual_run({QA: ok(partial=True)})
    assert (state.status, exit_code(state)) == ("partial_completed", EXIT_PARTIAL)
    assert finished is not None and finished.error_message is not None
    assert "completed only in part" in finished.error_message


async def test_steps_disabled_by_parameters_are_skipped_and_single_mode_runs_one_step() -> None:
    state, _, published, ran = await manual_run(
        {}, enable_sql_validation=False, enable_training_data_load=False
    )
    assert ran == [DDL, QA]
    skipped = [e.payload for e in published if isinstance(e.payload, StepSkipped)]
    assert [s.step for s in skipped] == [SQL, LOAD]
    assert (state.status, exit_code(state)) == ("completed", EXIT_OK)

    state, finished, _, ran = await manual_run({}, execution_mode="single", single_step=2)
    assert ran == [QA] and state.plan == (QA,)
    assert finished == TaskFinished(status="completed", result={QA.value: "completed"})


async def test_a_retryable_failure_is_not_retried_in_a_manual_run() -> None:
    retryable: Outcome = lambda s: StepFailed(  # noqa: E731
        step=s.step, execution_id=s.execution_id, error="timeout", retryable=True
    )
    state, _, published, ran = await manual_run({DDL: retryable})
    assert ran == [DDL]
    assert "step_retry_scheduled" not in [e.type for e in published]
    assert exit_code(state) == EXIT_FAILED
