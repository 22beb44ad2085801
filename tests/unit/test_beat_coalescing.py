"""Which beats a batch leaves out before storing (shared/event_compaction.py, `coalesce`): only those a
later beat of the same execution overwrites with nothing but quiet events of the task in between. Each
case is a mistake the rule could make: a beat dropped across a finish, a re-schedule or a task event, a
progress dropped for a heartbeat that does not carry its percent, executions or tasks mixed up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from services.log_collector.batch_store import candidates
from shared.event_compaction import coalesce
from shared.events import (
    LogEmitted,
    StepFailed,
    StepHeartbeat,
    StepProgress,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskCancelRequested,
    TaskFinished,
)
from shared.messages import EventEnvelope
from shared.steps import StepName

STEP = StepName.DDL_GENERATION
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _env(task: str, payload: BaseModel, i: int) -> EventEnvelope:
    return EventEnvelope(task_id=task, producer="t", payload=payload, occurred_at=AT + timedelta(seconds=i))  # type: ignore[arg-type]


def hb(execution: str = "x1") -> StepHeartbeat:
    return StepHeartbeat(step=STEP, execution_id=execution, runner_id="r")


def pr(percent: float, execution: str = "x1") -> StepProgress:
    return StepProgress(step=STEP, execution_id=execution, percent=percent)


def _kept(events: list[tuple[str, BaseModel]]) -> list[int]:
    """The positions `coalesce` keeps of `events` ((task, payload) in order)."""
    envelopes = [_env(task, payload, i) for i, (task, payload) in enumerate(events)]
    by_id = {env.event_id: i for i, env in enumerate(envelopes)}
    return [by_id[env.event_id] for env in coalesce(envelopes)]


def test_only_the_last_heartbeat_and_the_last_progress_stay() -> None:
    log = LogEmitted(message="m", step=STEP, execution_id="x1")
    events = [("t", hb()), ("t", hb()), ("t", pr(10)), ("t", log), ("t", hb()), ("t", pr(20)), ("t", hb())]
    # A log line is quiet; the heartbeats before the last progress and the first progress are overwritten.
    assert _kept(events) == [3, 5, 6]


def test_a_heartbeat_does_not_overwrite_a_progress() -> None:
    assert _kept([("t", pr(10)), ("t", hb()), ("t", hb())]) == [0, 2]


def test_nothing_is_dropped_across_an_event_that_is_not_quiet() -> None:
    for between in (
        StepSucceeded(step=STEP, execution_id="x1"),
        StepFailed(step=STEP, execution_id="x1", error="e"),
        StepScheduled(step=STEP, execution_id="x2", attempt=2),
        TaskFinished(status="cancelled"),
    ):
        assert _kept([("t", hb()), ("t", pr(10)), ("t", between), ("t", hb()), ("t", pr(20))]) == [1, 2, 4]


def test_quiet_events_do_not_stop_it() -> None:
    for between in (
        StepStarted(step=STEP, execution_id="x2", runner_id="r"),
        TaskCancelRequested(),
        LogEmitted(message="m"),
    ):
        assert _kept([("t", pr(10)), ("t", between), ("t", pr(20))]) == [1, 2]


def test_executions_and_tasks_are_kept_apart() -> None:
    events = [("t", hb("x1")), ("t", hb("x2")), ("u", hb("x1")), ("t", pr(50, "x2"))]
    # x1 of task t is not overwritten by x2, nor by task u's x1; x2's heartbeat is by its progress.
    assert _kept(events) == [0, 2, 3]


def test_another_tasks_event_does_not_reset_a_task() -> None:
    events = [("t", hb()), ("u", TaskFinished(status="completed")), ("t", hb())]
    assert _kept(events) == [1, 2]


def test_the_batch_path_drops_repeats_before_coalescing() -> None:
    first = _env("t", hb(), 0)
    later = _env("t", pr(10), 1)
    assert coalesce(candidates([first, later, first])) == [later]
