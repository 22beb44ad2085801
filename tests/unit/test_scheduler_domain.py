"""The scheduler's pure decision logic: evolve (events -> state), decide (state -> next events), admit.

States are built the way the scheduler builds them: by folding event envelopes through `evolve`.
`run` mirrors the real handler: take the decisions, apply the FIRST one as an event, evolve,
decide again, until nothing is left to do.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from services.scheduler.domain import Decision, admit, decide, retry_delay, start
from services.scheduler.plans import step_disabled_reason
from services.scheduler.state import Policy, TaskState, derive_status, evolve
from shared.events import (
    FailureCode,
    StepCancelled,
    StepFailed,
    StepHeartbeat,
    StepProgress,
    StepRetryScheduled,
    StepScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TaskCancelRequested,
    TaskCreated,
    TaskDeleted,
    TaskFinished,
    TaskRerunRequested,
    TaskStarted,
)
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName
from shared.vocabulary import STEP_ACTIVE, TASK_TERMINAL

DDL, QA, SQL, LOAD = STEP_ORDER
T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
TASK_ID = "task_20240101_120000_abc123"
RUNNER = "runner-7"
POLICY = Policy()
ALL_PENDING = {s.value: "pending" for s in STEP_ORDER}


# ---- helpers --------------------------------------------------------------------------------------


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


def params(**overrides: object) -> TaskParameters:
    base: dict[str, object] = {
        "db_connection": "postgresql://user:***@db/sales",
        "business_context": "sales orders",
        "table_list": ["orders", "customers"],
    }
    return TaskParameters(**{**base, **overrides})


def env(payload: BaseModel, at: datetime = T0, task_id: str = TASK_ID) -> EventEnvelope:
    return EventEnvelope(task_id=task_id, occurred_at=at, producer="test", payload=payload)


def created(
    steps: Iterable[StepName] = STEP_ORDER, parameters: TaskParameters | None = None, **overrides: object
) -> TaskCreated:
    return TaskCreated(
        parameters=parameters or params(**overrides),
        output_directory=f"/data/tasks/{TASK_ID}",
        steps=list(steps),
    )


def fold(envelopes: Iterable[EventEnvelope], state: TaskState | None = None) -> TaskState:
    for envelope in envelopes:
        state = evolve(state, envelope)
    assert state is not None
    return state


def apply(state: TaskState, *payloads: BaseModel, at: datetime = T0) -> TaskState:
    """Fold events that happened at `at` (runner reports, user requests) into the state."""
    return fold((env(p, at, state.task_id) for p in payloads), state)


def run(
    policy: Policy, events: TaskState | Iterable[EventEnvelope], now: datetime
) -> tuple[TaskState, list[BaseModel]]:
    """Decide, apply the first decision, evolve, repeat until no decisions; returns (state, emitted)."""
    state = events if isinstance(events, TaskState) else fold(events)
    emitted: list[BaseModel] = []
    for _ in range(100):
        decisions = decide(state, now, policy)
        if not decisions:
            return state, emitted
        assert all(isinstance(d, Decision) for d in decisions)
        event = decisions[0].event
        emitted.append(event)
        new_state = evolve(state, env(event, now, state.task_id))
        assert new_state is not None
        assert new_state != state, f"decision {event!r} did not change the state: it would loop forever"
        state = new_state
    raise AssertionError(f"decide did not settle; last events {emitted[-5:]}")


def started_task(
    steps: Iterable[StepName] = STEP_ORDER, at: datetime = T0, **param_overrides: object
) -> TaskState:
    return fold([env(created(steps, **param_overrides), at), env(TaskStarted(), at)])


def exec_id(state: TaskState, step: StepName) -> str:
    execution_id = state.step(step).execution_id
    assert execution_id is not None
    return execution_id


def succeed(state: TaskState, step: StepName, at: datetime = T0, **summary: object) -> TaskState:
    """The runner picks up the step's current execution and reports success."""
    eid = exec_id(state, step)
    return apply(
        state,
        StepStarted(step=step, execution_id=eid, runner_id=RUNNER),
        StepSucceeded(step=step, execution_id=eid, summary=summary),
        at=at,
    )


def fail(
    state: TaskState, step: StepName, at: datetime = T0, error: str = "boom", retryable: bool = False
) -> TaskState:
    eid = exec_id(state, step)
    return apply(
        state,
        StepStarted(step=step, execution_id=eid, runner_id=RUNNER),
        StepFailed(step=step, execution_id=eid, error=error, retryable=retryable, runner_id=RUNNER),
        at=at,
    )


def scheduled(step: StepName, at: datetime = T0, run_number: int = 1, attempt: int = 1) -> StepScheduled:
    suffix = "" if run_number == 1 else f"_{run_number}"
    return StepScheduled(
        step=step,
        execution_id=f"{TASK_ID}_step_{step.value}_exec_{at:%Y%m%d_%H%M%S}{suffix}",
        attempt=attempt,
    )


def run_steps(state: TaskState, steps: Iterable[StepName], now: datetime = T0) -> TaskState:
    """Let each step in turn be scheduled and succeed."""
    for step in steps:
        run_number = state.runs.get(step, 0) + 1
        state, emitted = run(POLICY, state, now)
        assert emitted[-1] == scheduled(step, now, run_number)
        state = succeed(state, step, now)
    return state


def running_step(step: StepName = DDL, at: datetime = T0) -> TaskState:
    """A started task whose first step (after completing the ones before `step`) runs on RUNNER."""
    state = run_steps(started_task(at=at), STEP_ORDER[: STEP_ORDER.index(step)], at)
    state, _ = run(POLICY, state, at)
    return apply(state, StepStarted(step=step, execution_id=exec_id(state, step), runner_id=RUNNER), at=at)


# ---- evolve: creation and start ---------------------------------------------------------------------


def test_evolve_task_created_builds_a_pending_state_with_its_plan() -> None:
    state = fold([env(created([DDL, QA]), T0)])
    assert state.task_id == TASK_ID
    assert state.status == "pending"
    assert state.plan == (DDL, QA)
    assert set(state.steps) == {DDL, QA}
    assert all(state.step(s).status == "pending" for s in (DDL, QA))
    assert state.created_at == T0
    assert state.queued_at == T0
    assert state.started_at is None
    assert state.runs == {}
    assert not state.terminal


def test_evolve_task_created_twice_keeps_the_first() -> None:
    first = fold([env(created(), T0)])
    again = evolve(first, env(created([QA], business_context="other"), T0 + secs(5)))
    assert again is first


def test_evolve_ignores_events_for_a_task_that_was_never_created() -> None:
    assert evolve(None, env(TaskStarted())) is None
    assert evolve(None, env(TaskDeleted())) is None


def test_evolve_task_started_moves_pending_to_in_progress_once() -> None:
    state = started_task(at=T0)
    assert state.status == "in_progress"
    assert state.started_at == T0
    assert apply(state, TaskStarted(), at=T0 + secs(30)) is state


def test_evolve_step_scheduled_records_the_execution_and_counts_runs() -> None:
    state = apply(started_task(), StepScheduled(step=DDL, execution_id="e1", attempt=1, force=True))
    run_ = state.step(DDL)
    assert (run_.status, run_.execution_id, run_.attempt, run_.force, run_.scheduled_at) == (
        "scheduled",
        "e1",
        1,
        True,
        T0,
    )
    assert state.runs == {DDL: 1}


def test_evolve_duplicate_step_scheduled_does_not_move_a_running_step_back() -> None:
    state = apply(started_task(), StepScheduled(step=DDL, execution_id="e1", attempt=1))
    state = apply(state, StepStarted(step=DDL, execution_id="e1", runner_id=RUNNER), at=T0 + secs(1))
    again = apply(state, StepScheduled(step=DDL, execution_id="e1", attempt=1), at=T0 + secs(2))
    assert again.step(DDL) == state.step(DDL)
    assert again.step(DDL).status == "running"
    assert again.runs == {DDL: 1}


def test_evolve_step_started_heartbeat_and_progress_refresh_the_heartbeat() -> None:
    state = apply(started_task(), StepScheduled(step=DDL, execution_id="e1", attempt=1))
    state = apply(state, StepStarted(step=DDL, execution_id="e1", runner_id=RUNNER), at=T0 + secs(1))
    assert (state.step(DDL).status, state.step(DDL).started_at) == ("running", T0 + secs(1))
    assert (state.step(DDL).last_heartbeat, state.step(DDL).runner_id) == (T0 + secs(1), RUNNER)

    state = apply(state, StepHeartbeat(step=DDL, execution_id="e1", runner_id="runner-8"), at=T0 + secs(20))
    assert (state.step(DDL).last_heartbeat, state.step(DDL).runner_id) == (T0 + secs(20), "runner-8")

    state = apply(state, StepProgress(step=DDL, execution_id="e1", percent=50), at=T0 + secs(40))
    assert state.step(DDL).last_heartbeat == T0 + secs(40)
    assert state.step(DDL).runner_id == "runner-8"  # progress carries no runner: keep the known one
    assert state.step(DDL).started_at == T0 + secs(1)


def test_evolve_step_succeeded_records_partial_from_the_summary() -> None:
    state = running_step(DDL)
    done = apply(state, StepSucceeded(step=DDL, execution_id=exec_id(state, DDL), summary={"partial": True}))
    assert (done.step(DDL).status, done.step(DDL).partial) == ("completed", True)
    full = apply(state, StepSucceeded(step=DDL, execution_id=exec_id(state, DDL), summary={"tables": 3}))
    assert (full.step(DDL).status, full.step(DDL).partial) == ("completed", False)


def test_a_partial_step_names_what_it_could_not_do_in_the_task_error() -> None:
    """Issue 9, item 10: 700 of 701 tables missing ends partial_completed, naming the tables."""
    state = running_step(DDL)
    reason = "700 of 701 tables not documented (missing or unreadable): public.t1, public.t2"
    state = apply(
        state,
        StepSucceeded(
            step=DDL, execution_id=exec_id(state, DDL), summary={"partial": True, "partial_reason": reason}
        ),
    )
    assert state.step(DDL).partial_reason == reason
    for step in (QA, SQL, LOAD):
        state = apply(state, StepSkipped(step=step, reason="test"))
    assert derive_status(state) == ("partial_completed", f"ddl_generation: {reason}")


@pytest.mark.parametrize(
    "payload",
    [
        StepStarted(step=DDL, execution_id="stale", runner_id="other"),
        StepHeartbeat(step=DDL, execution_id="stale", runner_id="other"),
        StepProgress(step=DDL, execution_id="stale", percent=10),
        StepSucceeded(step=DDL, execution_id="stale"),
        StepFailed(step=DDL, execution_id="stale", error="x"),
        StepCancelled(step=DDL, execution_id="stale"),
        StepSucceeded(step=QA, execution_id="stale"),  # a step that is not even scheduled
    ],
    ids=lambda p: f"{p.type}-{p.step}",
)
def test_evolve_ignores_runner_events_for_another_execution(payload: BaseModel) -> None:
    state = running_step(DDL)
    assert apply(state, payload, at=T0 + secs(10)) is state


def test_evolve_step_started_after_step_cancelled_stays_cancelled() -> None:
    state = apply(started_task(), StepScheduled(step=DDL, execution_id="e1", attempt=1))
    state = apply(state, StepCancelled(step=DDL, execution_id="e1", reason="stop"))
    late = apply(state, StepStarted(step=DDL, execution_id="e1", runner_id=RUNNER), at=T0 + secs(1))
    assert late is state
    assert late.step(DDL).status == "cancelled"


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_evolve_late_outcomes_never_change_a_finished_step(status: str) -> None:
    state = running_step(DDL)
    eid = exec_id(state, DDL)
    first: BaseModel = (
        StepSucceeded(step=DDL, execution_id=eid)
        if status == "completed"
        else StepFailed(step=DDL, execution_id=eid, error="boom")
    )
    state = apply(state, first)
    for late in (
        StepSucceeded(step=DDL, execution_id=eid, summary={"partial": True}),
        StepFailed(step=DDL, execution_id=eid, error="later", retryable=True),
        StepCancelled(step=DDL, execution_id=eid),
        StepCancelled(step=DDL),
        StepStarted(step=DDL, execution_id=eid, runner_id=RUNNER),
        StepHeartbeat(step=DDL, execution_id=eid, runner_id=RUNNER),
        StepSkipped(step=DDL, reason="late"),
        StepScheduled(step=DDL, execution_id="e-new", attempt=1),
    ):
        assert apply(state, late, at=T0 + secs(5)) is state


def test_evolve_step_succeeded_for_an_old_execution_after_a_retry_is_ignored() -> None:
    state = fail(running_step(DDL), DDL, retryable=True)
    old = exec_id(state, DDL)
    state, _ = run(POLICY, state, T0)
    state, _ = run(POLICY, state, T0 + secs(2))  # retry delay for attempt 1 is 2s
    assert state.step(DDL).status == "scheduled"
    assert exec_id(state, DDL) != old
    assert apply(state, StepSucceeded(step=DDL, execution_id=old), at=T0 + secs(3)) is state


def test_evolve_retry_scheduled_only_applies_to_a_failed_step() -> None:
    state = running_step(DDL)
    retry = StepRetryScheduled(step=DDL, next_attempt=2, delay_seconds=4, reason="boom")
    assert apply(state, retry) is state
    failed = fail(state, DDL, retryable=True)
    waiting = apply(failed, retry, at=T0 + secs(1))
    assert waiting.step(DDL).status == "waiting_retry"
    assert waiting.step(DDL).attempt == 1
    assert waiting.step(DDL).retry_at == T0 + secs(5)


def test_evolve_task_finished_twice_keeps_the_first_status() -> None:
    state = apply(started_task(), TaskFinished(status="failed", error_message="first"))
    assert state.status == "failed"
    for late in (
        TaskFinished(status="completed"),
        TaskStarted(),
        StepScheduled(step=DDL, execution_id="e1", attempt=1),
    ):
        assert apply(state, late, at=T0 + secs(1)) is state


def test_evolve_cancel_request_keeps_the_first_time_and_is_inert_on_a_terminal_task() -> None:
    state = apply(started_task(), TaskCancelRequested(reason="first"), at=T0 + secs(1))
    state = apply(state, TaskCancelRequested(reason="second"), at=T0 + secs(9))
    assert state.cancel_requested_at == T0 + secs(1)
    assert state.cancel_reason == "second"
    assert state.delete_requested is False

    finished = apply(started_task(), TaskFinished(status="completed"))
    after = apply(finished, TaskCancelRequested(reason="too late"))
    assert (after.status, after.cancel_requested_at, after.delete_requested) == ("completed", None, False)
    deleting = apply(finished, TaskCancelRequested(reason="too late", delete_after=True))
    assert (deleting.status, deleting.cancel_requested_at, deleting.delete_requested) == (
        "completed",
        None,
        True,
    )


@pytest.mark.parametrize(
    "payload",
    [
        TaskStarted(),
        TaskRerunRequested(steps=list(STEP_ORDER), execution_mode="complete"),
        TaskCancelRequested(),
        TaskFinished(status="completed"),
        StepScheduled(step=DDL, execution_id="e1", attempt=1),
        StepSkipped(step=DDL, reason="x"),
        TaskDeleted(),
        created(),
    ],
    ids=lambda p: p.type,
)
def test_evolve_ignores_everything_after_task_deleted(payload: BaseModel) -> None:
    state = apply(apply(started_task(), TaskFinished(status="failed")), TaskDeleted())
    assert state.deleted
    assert apply(state, payload, at=T0 + secs(1)) is state


# ---- derive_status and step_disabled_reason -----------------------------------------------------------


def with_steps(**statuses: str) -> TaskState:
    """A started task whose steps are forced into the given statuses (by step value)."""
    state = started_task()
    steps = {s: replace(state.step(s), status=statuses.get(s.value, "pending")) for s in STEP_ORDER}
    return replace(state, steps=steps)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({s.value: "completed" for s in STEP_ORDER}, ("completed", None)),
        (
            {"ddl_generation": "completed", "qa_generation": "completed", "sql_validation": "skipped"}
            | {"training_load": "skipped"},
            ("completed", None),
        ),
        ({"ddl_generation": "failed"}, ("failed", "ddl_generation failed: None")),
        (
            {"ddl_generation": "completed", "qa_generation": "failed"},
            ("partial_completed", "qa_generation failed: None"),
        ),
        ({"ddl_generation": "completed"}, ("partial_completed", "not every step ran")),
        ({}, ("failed", "not every step ran")),
        ({"ddl_generation": "completed", "qa_generation": "cancelled"}, ("cancelled", "cancelled")),
    ],
    ids=["all-completed", "skipped", "first-failed", "middle-failed", "unfinished", "nothing-ran", "cancel"],
)
def test_derive_status(statuses: dict[str, str], expected: tuple[str, str | None]) -> None:
    assert derive_status(with_steps(**statuses)) == expected


def test_derive_status_cancel_request_wins_and_names_its_reason() -> None:
    state = apply(with_steps(ddl_generation="failed"), TaskCancelRequested(reason="user said stop"))
    assert derive_status(state) == ("cancelled", "user said stop")


@pytest.mark.parametrize(
    ("overrides", "step", "expected"),
    [
        ({}, SQL, None),
        ({}, LOAD, None),
        ({"enable_sql_validation": False}, SQL, "disabled by enable_sql_validation=false"),
        ({"enable_sql_validation": False}, LOAD, None),
        ({"enable_training_data_load": False}, LOAD, "disabled by enable_training_data_load=false"),
        ({"enable_training_data_load": False}, DDL, None),
        ({"execution_mode": "single", "single_step": 3, "enable_sql_validation": False}, SQL, None),
        ({"execution_mode": "single", "single_step": 4, "enable_training_data_load": False}, LOAD, None),
    ],
)
def test_step_disabled_reason(overrides: dict[str, object], step: StepName, expected: str | None) -> None:
    assert step_disabled_reason(params(**overrides), step) == expected


# ---- decide: whole workflows -------------------------------------------------------------------------


def test_pending_task_waits_for_admission() -> None:
    state = fold([env(created())])
    assert decide(state, T0 + timedelta(days=1), POLICY) == []
    assert start() == Decision(TaskStarted())


def test_all_steps_completed_finishes_completed() -> None:
    state = run_steps(started_task(), STEP_ORDER)
    state, emitted = run(POLICY, state, T0)
    assert emitted == [
        TaskFinished(
            status="completed", error_message=None, result={s.value: "completed" for s in STEP_ORDER}
        )
    ]
    assert state.status == "completed"
    assert decide(state, T0 + timedelta(days=1), POLICY) == []


def test_steps_run_one_at_a_time_in_order() -> None:
    state, emitted = run(POLICY, started_task(), T0)
    assert emitted == [scheduled(DDL)]
    assert decide(state, T0 + secs(30), POLICY) == []  # waits for the scheduled step
    state = apply(state, StepStarted(step=DDL, execution_id=exec_id(state, DDL), runner_id=RUNNER))
    assert decide(state, T0 + secs(30), POLICY) == []  # and for the running one
    state, emitted = run(POLICY, succeed(state, DDL), T0 + secs(31))
    assert emitted == [scheduled(QA, T0 + secs(31))]


def test_steps_disabled_by_parameters_are_skipped_and_the_task_completes() -> None:
    state = started_task(enable_sql_validation=False, enable_training_data_load=False)
    state = run_steps(state, [DDL, QA])
    state, emitted = run(POLICY, state, T0)
    assert emitted == [
        StepSkipped(step=SQL, reason="disabled by enable_sql_validation=false"),
        StepSkipped(step=LOAD, reason="disabled by enable_training_data_load=false"),
        TaskFinished(
            status="completed",
            error_message=None,
            result={"ddl_generation": "completed", "qa_generation": "completed"}
            | {"sql_validation": "skipped", "training_load": "skipped"},
        ),
    ]
    assert state.status == "completed"


def test_a_disabled_middle_step_is_skipped_and_the_next_one_runs() -> None:
    state = run_steps(started_task(enable_sql_validation=False), [DDL, QA])
    state, emitted = run(POLICY, state, T0)
    assert emitted == [
        StepSkipped(step=SQL, reason="disabled by enable_sql_validation=false"),
        scheduled(LOAD),
    ]
    state, emitted = run(POLICY, succeed(state, LOAD), T0)
    assert [e.status for e in emitted if isinstance(e, TaskFinished)] == ["completed"]
    assert state.step(SQL).status == "skipped"


def test_first_step_failing_fails_the_task() -> None:
    state, _ = run(POLICY, started_task(), T0)
    state, emitted = run(POLICY, fail(state, DDL, error="no tables"), T0)
    assert emitted == [
        TaskFinished(
            status="failed",
            error_message="ddl_generation failed: no tables",
            result=ALL_PENDING | {"ddl_generation": "failed"},
        )
    ]
    assert state.status == "failed"


def test_a_middle_step_failing_after_earlier_ones_completed_is_partial() -> None:
    state = run_steps(started_task(), [DDL, QA])
    state, _ = run(POLICY, state, T0)
    state, emitted = run(POLICY, fail(state, SQL, error="bad sql"), T0)
    assert emitted == [
        TaskFinished(
            status="partial_completed",
            error_message="sql_validation failed: bad sql",
            result={"ddl_generation": "completed", "qa_generation": "completed"}
            | {"sql_validation": "failed", "training_load": "pending"},
        )
    ]
    assert state.status == "partial_completed"
    assert state.step(LOAD).status == "pending"


def test_a_step_that_completed_only_in_part_makes_the_task_partial() -> None:
    state = run_steps(started_task(), [DDL])
    state, _ = run(POLICY, state, T0)
    state = succeed(state, QA, partial=True, pairs=7)
    state = run_steps(state, [SQL, LOAD])
    state, emitted = run(POLICY, state, T0)
    assert emitted == [
        TaskFinished(
            status="partial_completed",
            error_message="qa_generation: completed only in part",
            result={s.value: "completed" for s in STEP_ORDER},
        )
    ]


def test_single_mode_runs_only_the_requested_step_even_if_parameters_disable_it() -> None:
    state = started_task([SQL], execution_mode="single", single_step=3, enable_sql_validation=False)
    state, emitted = run(POLICY, state, T0)
    assert emitted == [scheduled(SQL)]
    state, emitted = run(POLICY, succeed(state, SQL), T0)
    assert emitted == [TaskFinished(status="completed", result={"sql_validation": "completed"})]
    assert state.runs == {SQL: 1}


# ---- decide: retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "delay"), [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (20, 60.0)]
)
def test_retry_delay_is_exponential_and_capped(attempt: int, delay: float) -> None:
    assert retry_delay(POLICY, attempt) == delay


def test_retry_delay_follows_the_policy() -> None:
    policy = Policy(retry_base_delay=0.5, retry_max_delay=3.0)
    assert [retry_delay(policy, a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retryable_failure_is_retried_after_the_delay_with_a_new_execution() -> None:
    state, _ = run(POLICY, started_task(), T0)
    first = exec_id(state, DDL)
    state = fail(state, DDL, error="db timeout", retryable=True)

    state, emitted = run(POLICY, state, T0)
    assert emitted == [StepRetryScheduled(step=DDL, next_attempt=2, delay_seconds=2.0, reason="db timeout")]
    assert (state.step(DDL).status, state.step(DDL).retry_at) == ("waiting_retry", T0 + secs(2))
    assert state.status == "in_progress"

    # not before retry_at
    assert decide(state, T0 + secs(2) - timedelta(microseconds=1), POLICY) == []

    # at retry_at: attempt 2, a new execution id (same second, so the run number tells them apart)
    state, emitted = run(POLICY, state, T0 + secs(2))
    second = f"{TASK_ID}_step_ddl_generation_exec_20240101_120002_2"
    assert emitted == [StepScheduled(step=DDL, execution_id=second, attempt=2)]
    assert second != first
    assert (state.step(DDL).status, state.step(DDL).attempt, state.step(DDL).retry_at) == (
        "scheduled",
        2,
        None,
    )


def test_retry_after_retry_at_and_in_the_same_second_still_gets_a_unique_execution_id() -> None:
    state, _ = run(POLICY, started_task(), T0)
    ids = [exec_id(state, DDL)]
    state = fail(state, DDL, retryable=True)
    policy = Policy(retry_base_delay=0.0)  # retry right away: same clock second as the first run
    state, emitted = run(policy, state, T0)
    assert [type(e) for e in emitted] == [StepRetryScheduled, StepScheduled]
    ids.append(exec_id(state, DDL))
    state = fail(state, DDL, retryable=True)
    state, _ = run(policy, state, T0 + timedelta(minutes=5))  # long after retry_at
    ids.append(exec_id(state, DDL))
    assert state.step(DDL).attempt == 3
    assert len(set(ids)) == 3


def test_retries_stop_when_attempts_are_exhausted() -> None:
    policy = Policy(retry_max_attempts=3)
    state, _ = run(policy, started_task(), T0)
    now = T0
    delays: list[float] = []
    ids: list[str] = []
    for attempt in (1, 2):
        assert state.step(DDL).attempt == attempt
        ids.append(exec_id(state, DDL))
        state, emitted = run(policy, fail(state, DDL, now, error=f"fail {attempt}", retryable=True), now)
        assert emitted == [
            StepRetryScheduled(
                step=DDL, next_attempt=attempt + 1, delay_seconds=2.0 * attempt, reason=f"fail {attempt}"
            )
        ]
        delays.append(emitted[0].delay_seconds)
        now = state.step(DDL).retry_at
        assert now is not None
        state, _ = run(policy, state, now)
    assert state.step(DDL).attempt == 3
    ids.append(exec_id(state, DDL))
    state, emitted = run(policy, fail(state, DDL, now, error="fail 3", retryable=True), now)
    assert emitted == [
        TaskFinished(
            status="failed",
            error_message="ddl_generation failed: fail 3",
            result=ALL_PENDING | {"ddl_generation": "failed"},
        )
    ]
    assert delays == [2.0, 4.0]
    assert len(set(ids)) == 3
    assert state.runs == {DDL: 3}


def test_retry_disabled_by_policy_fails_at_once() -> None:
    state, _ = run(Policy(retry_max_attempts=1), started_task(), T0)
    state, emitted = run(Policy(retry_max_attempts=1), fail(state, DDL, retryable=True), T0)
    assert [type(e) for e in emitted] == [TaskFinished]
    assert state.status == "failed"


def test_non_retryable_failure_finishes_without_retry() -> None:
    state = run_steps(started_task(), [DDL])
    state, _ = run(POLICY, state, T0)
    state, emitted = run(POLICY, fail(state, QA, error="bad input", retryable=False), T0)
    assert emitted == [
        TaskFinished(
            status="partial_completed",
            error_message="qa_generation failed: bad input",
            result=ALL_PENDING | {"ddl_generation": "completed", "qa_generation": "failed"},
        )
    ]


def test_a_retried_step_that_then_succeeds_lets_the_workflow_continue() -> None:
    state, _ = run(POLICY, started_task(), T0)
    state, _ = run(POLICY, fail(state, DDL, retryable=True), T0)
    state, emitted = run(POLICY, state, T0 + secs(2))
    assert [type(e) for e in emitted] == [StepScheduled]
    state = run_steps(succeed(state, DDL, T0 + secs(3)), [QA, SQL, LOAD], T0 + secs(3))
    state, emitted = run(POLICY, state, T0 + secs(3))
    assert emitted == [TaskFinished(status="completed", result={s.value: "completed" for s in STEP_ORDER})]


# ---- decide: zombies ----------------------------------------------------------------------------------


def test_a_running_step_without_heartbeat_past_the_timeout_is_failed_as_a_zombie() -> None:
    state = running_step(QA, at=T0)
    eid = exec_id(state, QA)
    now = T0 + POLICY.heartbeat_timeout + secs(1)
    decisions = decide(state, now, POLICY)
    assert len(decisions) == 1
    event = decisions[0].event
    assert isinstance(event, StepFailed)
    assert (event.step, event.execution_id, event.retryable, event.runner_id) == (QA, eid, True, RUNNER)
    assert event.code == FailureCode.ZOMBIE  # the kind travels as a code; the wording is for people
    assert RUNNER in event.error
    assert T0.isoformat() in event.error
    assert event.error == (
        f"zombie step: no heartbeat from runner {RUNNER} since {T0.isoformat()} (timeout 60s)"
    )

    state, emitted = run(POLICY, state, now)
    assert emitted == [
        event,
        StepRetryScheduled(step=QA, next_attempt=2, delay_seconds=2.0, reason=event.error),
    ]
    assert state.step(QA).status == "waiting_retry"


def test_a_heartbeat_exactly_at_the_timeout_is_not_yet_a_zombie() -> None:
    state = running_step(DDL, at=T0)
    assert decide(state, T0 + POLICY.heartbeat_timeout, POLICY) == []


@pytest.mark.parametrize("kind", ["heartbeat", "progress"])
def test_heartbeats_and_progress_keep_a_step_alive(kind: str) -> None:
    state = running_step(DDL, at=T0)
    eid = exec_id(state, DDL)
    refresh: BaseModel = (
        StepHeartbeat(step=DDL, execution_id=eid, runner_id=RUNNER)
        if kind == "heartbeat"
        else StepProgress(step=DDL, execution_id=eid, percent=40)
    )
    state = apply(state, refresh, at=T0 + secs(50))
    assert decide(state, T0 + secs(100), POLICY) == []
    zombie = decide(state, T0 + secs(111), POLICY)
    assert [type(d.event) for d in zombie] == [StepFailed]
    assert (T0 + secs(50)).isoformat() in zombie[0].event.error  # type: ignore[attr-defined]


def test_a_heartbeat_for_another_execution_does_not_keep_a_step_alive() -> None:
    state = running_step(DDL, at=T0)
    state = apply(state, StepHeartbeat(step=DDL, execution_id="stale", runner_id="x"), at=T0 + secs(50))
    assert [type(d.event) for d in decide(state, T0 + secs(61), POLICY)] == [StepFailed]


def test_a_scheduled_step_that_has_not_started_is_not_a_zombie() -> None:
    state, _ = run(POLICY, started_task(), T0)
    assert state.step(DDL).status == "scheduled"
    # Waiting for a free runner is not silence: only the (much longer) dispatch timeout applies.
    assert decide(state, T0 + POLICY.heartbeat_timeout * 10, POLICY) == []
    assert decide(state, T0 + POLICY.dispatch_timeout, POLICY) == []


def test_a_step_no_runner_starts_within_the_dispatch_timeout_is_failed_and_retried() -> None:
    state, _ = run(POLICY, started_task(), T0)
    lost = exec_id(state, DDL)
    (decision,) = decide(state, T0 + POLICY.dispatch_timeout + secs(1), POLICY)
    assert isinstance(decision.event, StepFailed)
    assert decision.event.execution_id == lost and decision.event.retryable
    assert "no step runner started the step" in decision.event.error
    assert decision.event.code == FailureCode.DISPATCH_TIMEOUT
    state, emitted = run(POLICY, state, T0 + POLICY.dispatch_timeout + secs(1))
    assert [type(e) for e in emitted] == [StepFailed, StepRetryScheduled]
    state, emitted = run(POLICY, state, T0 + POLICY.dispatch_timeout + secs(10))
    assert [type(e) for e in emitted] == [StepScheduled]
    assert exec_id(state, DDL) != lost


def test_a_zombie_runner_reporting_late_cannot_overwrite_the_retry() -> None:
    state = running_step(DDL, at=T0)
    zombie_exec = exec_id(state, DDL)
    state, _ = run(POLICY, state, T0 + secs(61))
    state, emitted = run(POLICY, state, T0 + secs(63))
    assert [type(e) for e in emitted] == [StepScheduled]
    late = apply(state, StepSucceeded(step=DDL, execution_id=zombie_exec), at=T0 + secs(64))
    assert late is state


# ---- decide: task timeout -----------------------------------------------------------------------------


def test_a_task_past_its_timeout_fails_its_active_step_and_itself() -> None:
    state = running_step(QA, at=T0)
    now = T0 + POLICY.task_timeout + secs(1)
    state = apply(
        state, StepHeartbeat(step=QA, execution_id=exec_id(state, QA), runner_id=RUNNER), at=now
    )  # alive, just too slow
    reason = f"task exceeded task_timeout_hours=2 (started {T0.isoformat()})"
    assert decide(state, now, POLICY) == [
        Decision(
            StepFailed(
                step=QA,
                execution_id=exec_id(state, QA),
                error=reason,
                retryable=False,
                code=FailureCode.TASK_TIMEOUT,
            )
        ),
        Decision(
            TaskFinished(
                status="failed",
                error_message=reason,
                result=ALL_PENDING | {"ddl_generation": "completed", "qa_generation": "running"},
            )
        ),
    ]
    state, emitted = run(POLICY, state, now)
    assert emitted[-1] == TaskFinished(
        status="failed",
        error_message=reason,
        result=ALL_PENDING | {"ddl_generation": "completed", "qa_generation": "failed"},
    )
    assert (state.status, state.step(QA).status, state.step(QA).error) == ("failed", "failed", reason)


def test_the_timeout_reason_names_fractional_hours_and_is_not_hit_at_the_limit() -> None:
    policy = Policy(task_timeout=timedelta(minutes=30))
    state, _ = run(policy, started_task(), T0)
    assert decide(state, T0 + timedelta(minutes=30), policy) == []
    state, emitted = run(policy, state, T0 + timedelta(minutes=30, seconds=1))
    assert isinstance(emitted[-1], TaskFinished)
    assert emitted[-1].error_message is not None
    assert "task_timeout_hours=0.5" in emitted[-1].error_message
    assert state.status == "failed"


def test_a_task_waiting_for_a_retry_times_out_too() -> None:
    state, _ = run(POLICY, started_task(), T0)
    state, _ = run(POLICY, fail(state, DDL, retryable=True), T0)
    assert state.step(DDL).status == "waiting_retry"
    state, emitted = run(POLICY, state, T0 + POLICY.task_timeout + secs(1))
    assert [type(e) for e in emitted] == [TaskFinished]
    assert state.status == "failed"


# ---- decide: cancellation -----------------------------------------------------------------------------


def test_cancel_before_start_cancels_every_step_and_the_task() -> None:
    state = fold([env(created()), env(TaskCancelRequested(reason="not needed"), T0 + secs(1))])
    assert admit([state], 5) == []
    state, emitted = run(POLICY, state, T0 + secs(1))
    assert emitted == [
        *(StepCancelled(step=s, reason="cancelled before it ran") for s in STEP_ORDER),
        TaskFinished(
            status="cancelled", error_message="not needed", result={s.value: "cancelled" for s in STEP_ORDER}
        ),
    ]
    assert state.status == "cancelled"
    assert state.started_at is None


def test_cancel_during_a_step_waits_for_the_runner_to_confirm() -> None:
    state = running_step(QA, at=T0)
    eid = exec_id(state, QA)
    state = apply(state, TaskCancelRequested(reason="stop"), at=T0 + secs(1))
    state, emitted = run(POLICY, state, T0 + secs(2))
    assert emitted == [
        StepCancelled(step=SQL, reason="cancelled before it ran"),
        StepCancelled(step=LOAD, reason="cancelled before it ran"),
    ]
    assert state.status == "in_progress"
    assert state.step(QA).status == "running"

    state = apply(state, StepCancelled(step=QA, execution_id=eid, reason="runner stopped"), at=T0 + secs(3))
    state, emitted = run(POLICY, state, T0 + secs(3))
    assert emitted == [
        TaskFinished(
            status="cancelled",
            error_message="stop",
            result={"ddl_generation": "completed"} | {s.value: "cancelled" for s in (QA, SQL, LOAD)},
        )
    ]
    assert state.step(QA).error == "runner stopped"


def test_cancel_grace_expiry_cancels_the_unconfirmed_step_and_the_task() -> None:
    state = running_step(DDL, at=T0)
    eid = exec_id(state, DDL)
    state = apply(state, TaskCancelRequested(reason="stop"), at=T0 + secs(1))
    state, _ = run(POLICY, state, T0 + secs(1))
    assert decide(state, T0 + secs(1) + POLICY.cancel_grace - secs(1), POLICY) == []

    state, emitted = run(POLICY, state, T0 + secs(1) + POLICY.cancel_grace)
    assert emitted == [
        StepCancelled(
            step=DDL, execution_id=eid, reason="cancelled: the runner did not confirm within the grace period"
        ),
        TaskFinished(
            status="cancelled", error_message="stop", result={s.value: "cancelled" for s in STEP_ORDER}
        ),
    ]
    # the runner finishing late changes nothing
    late = apply(state, StepSucceeded(step=DDL, execution_id=eid), at=T0 + secs(30))
    assert late is state


def test_cancel_wins_over_a_zombie_and_a_timeout() -> None:
    state = running_step(DDL, at=T0)
    now = T0 + POLICY.task_timeout + secs(10)
    state = apply(state, TaskCancelRequested(reason="stop"), at=now)
    state, emitted = run(POLICY, state, now)
    assert [type(e) for e in emitted] == [StepCancelled, StepCancelled, StepCancelled]
    state, emitted = run(POLICY, state, now + POLICY.cancel_grace)
    assert [type(e) for e in emitted] == [StepCancelled, TaskFinished]
    assert state.status == "cancelled"


def test_cancel_while_waiting_for_a_retry_cancels_the_step() -> None:
    state, _ = run(POLICY, started_task(), T0)
    eid = exec_id(state, DDL)
    state, _ = run(POLICY, fail(state, DDL, retryable=True), T0)
    state = apply(state, TaskCancelRequested(), at=T0 + secs(1))
    state, emitted = run(POLICY, state, T0 + secs(1))
    assert emitted[0] == StepCancelled(step=DDL, execution_id=eid, reason="cancelled before it ran")
    assert emitted[-1] == TaskFinished(
        status="cancelled",
        error_message="cancelled by user",
        result={s.value: "cancelled" for s in STEP_ORDER},
    )


def test_a_step_cancelled_by_its_runner_cancels_the_task() -> None:
    state = running_step(QA, at=T0)
    state = apply(state, StepCancelled(step=QA, execution_id=exec_id(state, QA), reason="shutdown"))
    state, emitted = run(POLICY, state, T0)
    assert emitted == [
        TaskFinished(
            status="cancelled",
            error_message="cancelled",
            result=ALL_PENDING | {"ddl_generation": "completed", "qa_generation": "cancelled"},
        )
    ]


# ---- decide: idempotence ------------------------------------------------------------------------------


def test_decide_is_idempotent_once_its_decisions_are_applied() -> None:
    state = started_task()
    for now in (T0, T0 + secs(1)):
        state, _ = run(POLICY, state, now)
        assert decide(state, now, POLICY) == []
        assert decide(state, now, POLICY) == []
    # a decision not applied yet is made again, identically
    fresh = started_task()
    assert decide(fresh, T0, POLICY) == decide(fresh, T0, POLICY) == [Decision(scheduled(DDL))]


@pytest.mark.parametrize("status", sorted(TASK_TERMINAL))
def test_a_terminal_task_needs_nothing(status: str) -> None:
    state = apply(started_task(), TaskFinished(status=status))  # type: ignore[arg-type]
    assert decide(state, T0 + timedelta(days=30), POLICY) == []


# ---- delete -------------------------------------------------------------------------------------------


def test_delete_of_a_terminal_task_is_decided_at_once() -> None:
    state = apply(started_task(), TaskFinished(status="completed"))
    state = apply(state, TaskCancelRequested(reason="delete", delete_after=True))
    assert decide(state, T0, POLICY) == [Decision(TaskDeleted())]
    state, emitted = run(POLICY, state, T0)
    assert emitted == [TaskDeleted()]
    assert state.deleted
    assert state.status == "completed"
    assert decide(state, T0, POLICY) == []


def test_delete_of_a_running_task_cancels_it_first_then_deletes_it() -> None:
    state = running_step(DDL, at=T0)
    state = apply(state, TaskCancelRequested(reason="deleted by user", delete_after=True), at=T0 + secs(1))
    state, emitted = run(POLICY, state, T0 + secs(1))
    assert not any(isinstance(e, TaskDeleted) for e in emitted)
    assert not state.deleted
    state, emitted = run(POLICY, state, T0 + secs(1) + POLICY.cancel_grace)
    assert [type(e) for e in emitted] == [StepCancelled, TaskFinished, TaskDeleted]
    assert emitted[1] == TaskFinished(
        status="cancelled", error_message="deleted by user", result={s.value: "cancelled" for s in STEP_ORDER}
    )
    assert (state.status, state.deleted) == ("cancelled", True)


def test_delete_of_a_pending_task_cancels_then_deletes_it() -> None:
    state = fold([env(created()), env(TaskCancelRequested(delete_after=True), T0)])
    state, emitted = run(POLICY, state, T0)
    assert [type(e) for e in emitted] == [*[StepCancelled] * 4, TaskFinished, TaskDeleted]
    assert state.deleted


# ---- rerun --------------------------------------------------------------------------------------------


def finished_task(status: str = "completed") -> TaskState:
    state = run_steps(started_task(), STEP_ORDER)
    state, _ = run(POLICY, state, T0)
    assert state.status == "completed"
    return state if status == "completed" else apply(started_task(), TaskFinished(status=status))  # type: ignore[arg-type]


def test_rerun_of_a_terminal_task_resets_its_plan_and_starts_over_with_force() -> None:
    state = apply(finished_task(), TaskCancelRequested(reason="x"))  # inert on terminal tasks
    later = T0 + timedelta(hours=1)
    state = apply(
        state, TaskRerunRequested(steps=list(STEP_ORDER), execution_mode="complete", force=True), at=later
    )
    assert (state.status, state.force, state.queued_at, state.started_at) == ("pending", True, later, None)
    assert (state.cancel_requested_at, state.cancel_reason, state.delete_requested) == (None, None, False)
    assert all(state.step(s).status == "pending" and state.step(s).execution_id is None for s in STEP_ORDER)
    assert state.runs == {s: 1 for s in STEP_ORDER}  # history is kept
    assert decide(state, later, POLICY) == []  # waits for admission again
    assert admit([state], 1) == [TASK_ID]

    state, emitted = run(POLICY, apply(state, TaskStarted(), at=later), later)
    assert emitted == [
        StepScheduled(
            step=DDL,
            execution_id=f"{TASK_ID}_step_ddl_generation_exec_20240101_130000_2",
            attempt=1,
            force=True,
        )
    ]


@pytest.mark.parametrize("status", ["failed", "partial_completed", "cancelled"])
def test_rerun_works_from_every_terminal_status(status: str) -> None:
    state = apply(finished_task(status), TaskRerunRequested(steps=[QA], execution_mode="single"))
    assert (state.status, state.plan, state.force) == ("pending", (QA,), False)


def test_rerun_of_a_single_step_runs_only_that_step_and_keeps_the_others() -> None:
    state = apply(finished_task(), TaskRerunRequested(steps=[QA], execution_mode="single"), at=T0 + secs(60))
    assert state.plan == (QA,)
    assert (state.parameters.execution_mode, state.parameters.single_step) == ("single", 2)
    assert state.step(DDL).status == "completed"
    assert state.step(QA).status == "pending"
    state, emitted = run(POLICY, apply(state, TaskStarted(), at=T0 + secs(60)), T0 + secs(60))
    assert emitted == [scheduled(QA, T0 + secs(60), run_number=2)]
    state, emitted = run(POLICY, fail(state, QA, T0 + secs(61), error="llm down"), T0 + secs(61))
    assert emitted == [
        TaskFinished(
            status="failed",
            error_message="qa_generation failed: llm down",
            result={"qa_generation": "failed"},
        )
    ]


def test_single_rerun_of_a_step_disabled_by_parameters_runs_it() -> None:
    state = run_steps(started_task(enable_sql_validation=False), [DDL, QA])
    state, _ = run(POLICY, state, T0)
    state, _ = run(POLICY, succeed(state, LOAD), T0)
    assert (state.status, state.step(SQL).status) == ("completed", "skipped")

    later = T0 + secs(60)
    state = apply(state, TaskRerunRequested(steps=[SQL], execution_mode="single"), TaskStarted(), at=later)
    state, emitted = run(POLICY, state, later)
    assert emitted == [scheduled(SQL, later)]


def test_complete_rerun_of_a_single_mode_task_skips_steps_disabled_by_parameters() -> None:
    state = started_task([DDL], execution_mode="single", single_step=1, enable_training_data_load=False)
    state = run_steps(state, [DDL])
    state, _ = run(POLICY, state, T0)
    assert state.status == "completed"

    later = T0 + secs(60)
    state = apply(
        state, TaskRerunRequested(steps=list(STEP_ORDER), execution_mode="complete"), TaskStarted(), at=later
    )
    assert (state.parameters.execution_mode, state.parameters.single_step) == ("complete", None)
    state = run_steps(state, [DDL, QA, SQL], later)
    state, emitted = run(POLICY, state, later)
    assert emitted[0] == StepSkipped(step=LOAD, reason="disabled by enable_training_data_load=false")
    assert state.status == "completed"


@pytest.mark.parametrize("stage", ["pending", "in_progress"])
def test_rerun_of_a_task_that_is_not_finished_is_ignored(stage: str) -> None:
    state = fold([env(created())]) if stage == "pending" else running_step(QA)
    assert apply(state, TaskRerunRequested(steps=[DDL], execution_mode="single", force=True)) is state


# ---- admission ----------------------------------------------------------------------------------------


def task(task_id: str, queued: datetime, *extra: BaseModel) -> TaskState:
    return fold([env(created(), queued, task_id), *(env(p, queued, task_id) for p in extra)])


def test_admit_picks_the_oldest_pending_tasks_up_to_the_limit() -> None:
    tasks = [
        task("task_c", T0 + secs(3)),
        task("task_a", T0 + secs(1)),
        task("task_b", T0 + secs(2)),
    ]
    assert admit(tasks, 1) == ["task_a"]
    assert admit(tasks, 2) == ["task_a", "task_b"]
    assert admit(tasks, 10) == ["task_a", "task_b", "task_c"]
    assert admit(tasks, 0) == []
    assert admit([], 3) == []


def test_admit_breaks_ties_by_task_id() -> None:
    tasks = [task("task_z", T0), task("task_m", T0), task("task_a", T0)]
    assert admit(tasks, 3) == ["task_a", "task_m", "task_z"]


def test_admit_counts_tasks_in_progress_against_the_limit() -> None:
    running = task("task_r", T0, TaskStarted())
    waiting = [task("task_x", T0 + secs(1)), task("task_y", T0 + secs(2))]
    assert admit([running, *waiting], 1) == []
    assert admit([running, *waiting], 2) == ["task_x"]
    two_running = [running, task("task_s", T0, TaskStarted())]
    assert admit([*two_running, *waiting], 1) == []  # over the limit: nothing, never negative


def test_admit_skips_cancel_requested_finished_and_deleted_tasks() -> None:
    tasks = [
        task("task_1", T0, TaskCancelRequested()),
        task("task_2", T0, TaskStarted(), TaskFinished(status="completed")),
        task("task_3", T0, TaskStarted(), TaskFinished(status="failed"), TaskDeleted()),
        task("task_4", T0 + secs(9)),
    ]
    assert admit(tasks, 5) == ["task_4"]


def test_admit_orders_a_rerun_task_by_when_it_was_queued_again() -> None:
    rerun = task(
        "task_a",
        T0,
        TaskStarted(),
        TaskFinished(status="failed"),
    )
    rerun = fold(
        [env(TaskRerunRequested(steps=[DDL], execution_mode="single"), T0 + secs(10), "task_a")], rerun
    )
    newer = task("task_b", T0 + secs(5))
    assert admit([rerun, newer], 1) == ["task_b"]


def test_admit_then_start_moves_the_task_in_progress() -> None:
    state = task(TASK_ID, T0)
    [admitted] = admit([state], 1)
    state = fold([env(start().event, T0 + secs(1), admitted)], state)
    assert (state.status, state.started_at) == ("in_progress", T0 + secs(1))
    assert admit([state], 1) == []


# ---- property: the task never stays in_progress with nothing to run -----------------------------------


def _random_step_event(rng: random.Random, state: TaskState) -> BaseModel | None:
    """A runner report for the active step (sometimes for a stale execution), or None."""
    active = state.active_steps()
    if not active:
        return None
    step = active[0]
    eid = exec_id(state, step) if rng.random() < 0.9 else "stale-execution"
    return rng.choice(
        [
            StepStarted(step=step, execution_id=eid, runner_id=f"runner-{rng.randint(1, 3)}"),
            StepHeartbeat(step=step, execution_id=eid, runner_id="runner-1"),
            StepProgress(step=step, execution_id=eid, percent=rng.randint(0, 100)),
            StepSucceeded(step=step, execution_id=eid, summary={"partial": rng.random() < 0.1}),
            StepSucceeded(step=step, execution_id=eid),
            StepFailed(step=step, execution_id=eid, error="boom", retryable=rng.random() < 0.6),
            StepCancelled(step=step, execution_id=eid),
        ]
    )


def _random_event(rng: random.Random, state: TaskState) -> BaseModel | None:
    roll = rng.random()
    if roll < 0.65:
        return _random_step_event(rng, state)
    if roll < 0.72:
        return TaskCancelRequested(delete_after=rng.random() < 0.3)
    if roll < 0.80:
        steps = rng.choice([list(STEP_ORDER), [rng.choice(STEP_ORDER)]])
        return TaskRerunRequested(
            steps=steps, execution_mode="complete" if len(steps) > 1 else "single", force=rng.random() < 0.5
        )
    return None  # only the clock moves


def _random_parameters(rng: random.Random) -> tuple[list[StepName], TaskParameters]:
    if rng.random() < 0.25:
        number = rng.randint(1, 4)
        return [STEP_ORDER[number - 1]], params(execution_mode="single", single_step=number)
    return list(STEP_ORDER), params(
        enable_sql_validation=rng.random() < 0.7, enable_training_data_load=rng.random() < 0.7
    )


def _check_settled(state: TaskState, now: datetime, policy: Policy, seed: int) -> None:
    assert decide(state, now, policy) == [], seed
    if state.deleted:
        return
    busy = any(state.step(s).status in (*STEP_ACTIVE, "waiting_retry") for s in state.plan)
    if not busy:
        assert state.status in TASK_TERMINAL or state.status == "pending", (seed, state)
    if state.status in TASK_TERMINAL:
        assert not state.active_steps(), (seed, state)


@pytest.mark.parametrize("seed", range(300))
def test_random_event_sequences_never_leave_a_task_in_progress_with_nothing_to_run(seed: int) -> None:
    rng = random.Random(seed)
    policy = Policy(
        heartbeat_timeout=secs(rng.choice([30, 60])),
        task_timeout=timedelta(minutes=rng.choice([5, 30, 120])),
        retry_max_attempts=rng.randint(1, 4),
        retry_base_delay=rng.choice([0.0, 1.0, 5.0]),
        retry_max_delay=20.0,
        cancel_grace=secs(rng.choice([0, 10])),
    )
    steps, parameters = _random_parameters(rng)
    now = T0
    state = fold([env(created(steps, parameters), now)])
    scheduled_ids: list[str] = []

    for _ in range(rng.randint(5, 40)):
        now += secs(rng.choice([0, 1, 5, 20, 45, 90, 600]))
        if admit([state], policy.max_concurrent_tasks):
            state = fold([env(start().event, now)], state)
        event = _random_event(rng, state)
        before = state
        if event is not None:
            state = fold([env(event, now)], state)
            if before.terminal and not isinstance(event, TaskRerunRequested):
                assert state.status == before.status, (seed, event)  # a late event never moves it back
        state, emitted = run(policy, state, now)
        scheduled_ids += [e.execution_id for e in emitted if isinstance(e, StepScheduled)]
        _check_settled(state, now, policy, seed)
        if state.deleted:
            break

    # however it ended, a task that was in progress always reaches a terminal status in time
    was_in_progress = state.status == "in_progress"
    now += policy.task_timeout + timedelta(days=1)
    state, emitted = run(policy, state, now)
    scheduled_ids += [e.execution_id for e in emitted if isinstance(e, StepScheduled)]
    _check_settled(state, now, policy, seed)
    if was_in_progress:
        assert state.status in TASK_TERMINAL, (seed, state)
    assert len(scheduled_ids) == len(set(scheduled_ids)), seed
