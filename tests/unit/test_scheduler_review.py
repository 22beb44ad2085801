"""Review before load in the scheduler's domain (services/scheduler/review.py): after step 3 a task with
review_before_load waits as `awaiting_review`; it is not a zombie, not timed out by the task timeout, not
counted by admission; complete resumes at step 4, abandon ends it (cancelled), a timeout fails it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from services.scheduler.domain import admit, decide, start
from services.scheduler.state import Policy, TaskState, evolve
from shared.commands import AbandonReview, CancelTask, CompleteReview
from shared.events import (
    LogEmitted,
    ReviewAbandoned,
    ReviewCompleted,
    ReviewRequested,
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
from shared.steps import STEP_ORDER, StepName

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TASK = "task_20260101_120000_abc123"
POLICY = Policy(task_timeout=timedelta(hours=2), review_timeout=timedelta(days=3))


def env(payload: BaseModel, at: datetime, task_id: str = TASK) -> EventEnvelope:
    return EventEnvelope(task_id=task_id, occurred_at=at, producer="test", payload=payload)


def params(review: bool = True) -> TaskParameters:
    return TaskParameters(
        db_connection="postgresql://u:***@db/x", business_context="sales", review_before_load=review
    )


def drive(state: TaskState | None, at: datetime, policy: Policy = POLICY, limit: int = 50) -> TaskState:
    """Apply the first decision until there is none, finishing every scheduled step at once."""
    assert state is not None
    for _ in range(limit):
        decisions = decide(state, at, policy)
        if not decisions:
            return state
        event = decisions[0].event
        new = evolve(state, env(event, at))
        assert new is not None
        state = new
        if isinstance(event, StepScheduled):
            for fact in (
                StepStarted(step=event.step, execution_id=event.execution_id, runner_id="r1"),
                StepSucceeded(step=event.step, execution_id=event.execution_id),
            ):
                new = evolve(state, env(fact, at))
                assert new is not None
                state = new
    raise AssertionError("did not settle")


def to_review(review: bool = True, task_id: str = TASK) -> TaskState:
    state = evolve(
        None,
        env(
            TaskCreated(parameters=params(review), output_directory="/d", steps=list(STEP_ORDER)), T0, task_id
        ),
    )
    state = evolve(state, env(start().event, T0, task_id))
    return drive(state, T0)


def apply(state: TaskState, event: BaseModel, at: datetime) -> TaskState:
    new = evolve(state, env(event, at))
    assert new is not None
    return new


def test_after_step_3_the_task_awaits_review_and_nothing_runs() -> None:
    state = to_review()
    assert state.status == "awaiting_review"
    assert [state.step(s).status for s in STEP_ORDER] == ["completed", "completed", "completed", "pending"]
    assert state.review is not None and state.review.requested_at == T0


def test_without_the_parameter_step_4_runs_at_once() -> None:
    state = to_review(review=False)
    assert state.status == "completed"
    assert state.step(StepName.TRAINING_LOAD).status == "completed"


def test_awaiting_review_outlives_the_task_timeout_and_the_heartbeat_timeout() -> None:
    state = to_review()
    later = T0 + timedelta(days=2)  # far past DP_TASK_TIMEOUT_HOURS and any heartbeat timeout
    assert decide(state, later, POLICY) == []


def test_awaiting_review_is_not_counted_against_the_concurrency_limit() -> None:
    waiting = to_review()
    other = evolve(
        None,
        env(
            TaskCreated(parameters=params(), output_directory="/d", steps=list(STEP_ORDER)), T0, "task_other"
        ),
    )
    assert other is not None
    assert admit([waiting, other], limit=1) == ["task_other"]


def test_complete_resumes_at_step_4_and_the_review_time_is_not_counted_by_the_task_timeout() -> None:
    state = to_review()
    at = T0 + timedelta(hours=30)
    command = CompleteReview(
        actor="alice", actor_role="operator", approved=3, rejected=1, undecided=0, edited=1
    )
    [decision] = decide(state, at, POLICY, command)
    assert isinstance(decision.event, ReviewCompleted) and decision.event.actor == "alice"
    state = apply(state, decision.event, at)
    assert state.status == "in_progress"
    [next_step] = decide(state, at + timedelta(minutes=1), POLICY)
    assert isinstance(next_step.event, StepScheduled) and next_step.event.step is StepName.TRAINING_LOAD
    state = drive(state, at + timedelta(minutes=1))
    assert state.status == "completed"


def test_a_second_review_is_not_asked_in_the_same_run_and_a_rerun_asks_again() -> None:
    state = to_review()
    state = apply(
        state,
        ReviewCompleted(actor="a", actor_role="admin", approved=1, rejected=0, undecided=0, edited=0),
        T0,
    )
    state = drive(state, T0)
    assert state.status == "completed"
    state = apply(state, TaskRerunRequested(steps=[StepName.TRAINING_LOAD], execution_mode="single"), T0)
    state = apply(state, start().event, T0)
    [decision] = decide(state, T0, POLICY)
    assert isinstance(decision.event, ReviewRequested)


def test_abandon_skips_step_4_and_ends_the_task_cancelled() -> None:
    state = to_review()
    [decision] = decide(state, T0, POLICY, AbandonReview(actor="bob", actor_role="operator"))
    assert isinstance(decision.event, ReviewAbandoned)
    assert decision.event.reason == "review abandoned by bob (operator): nothing loaded"
    state = apply(state, decision.event, T0)
    [skip] = decide(state, T0, POLICY)
    assert isinstance(skip.event, StepSkipped) and skip.event.step is StepName.TRAINING_LOAD
    state = apply(state, skip.event, T0)
    [finish] = decide(state, T0, POLICY)
    assert isinstance(finish.event, TaskFinished)
    assert finish.event.status == "cancelled"
    assert finish.event.error_message == "review abandoned by bob (operator): nothing loaded"


def test_a_review_waiting_longer_than_its_timeout_fails_the_task_with_the_reason() -> None:
    state = to_review()
    assert decide(state, T0 + timedelta(days=2, hours=23), POLICY) == []
    at = T0 + timedelta(days=3, seconds=1)
    [decision] = decide(state, at, POLICY)
    assert isinstance(decision.event, ReviewAbandoned) and decision.event.timed_out
    state = drive(apply(state, decision.event, at), at)
    assert state.status == "failed"
    assert state.step(StepName.TRAINING_LOAD).status == "skipped"


def test_no_review_timeout_waits_for_ever() -> None:
    state = to_review()
    assert decide(state, T0 + timedelta(days=3650), Policy(review_timeout=None)) == []


def test_complete_or_abandon_of_a_task_not_awaiting_review_is_ignored_with_a_warning() -> None:
    state = to_review(review=False)
    for command in (
        CompleteReview(actor="a", actor_role="operator", approved=1, rejected=0, undecided=0, edited=0),
        AbandonReview(actor="a", actor_role="operator"),
    ):
        [decision] = decide(state, T0, POLICY, command)
        assert isinstance(decision.event, LogEmitted) and "not awaiting review" in decision.event.message


def test_cancel_while_awaiting_review_ends_the_task_cancelled() -> None:
    state = to_review()
    [request] = decide(state, T0, POLICY, CancelTask(reason="stop"))
    state = drive(apply(state, request.event, T0), T0)
    assert state.status == "cancelled"
