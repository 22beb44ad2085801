"""The `Scheduler` service class, driven with an in-memory event store, publisher and queue probe.

Each test sends the messages the real queue would deliver (commands from the gateway, runner events,
ticks) and checks what the scheduler published: events on the event exchange, RunStep commands for
runners. The command rules themselves (`decide(..., command=...)`) are also checked as pure functions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from services.scheduler.domain import (
    FRESH_ORDER_SECONDS,
    Decision,
    decide,
    needs_fresh_events,
    scheduler_owns,
    waiting_for_a_runner,
)
from services.scheduler.handlers import Scheduler
from services.scheduler.plans import plan
from services.scheduler.state import Policy, TaskState, evolve
from shared.broker import STEPS_KEY
from shared.commands import CancelTask, CreateTask, DeleteTask, ExecuteTask, RunStep, Tick
from shared.events import (
    FailureCode,
    LogEmitted,
    StepFailed,
    StepHeartbeat,
    StepRetryScheduled,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskCancelRequested,
    TaskCreated,
    TaskDeleted,
    TaskFinished,
    TaskRerunRequested,
    TaskStarted,
)
from shared.messages import CommandEnvelope, EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER

DDL, QA, SQL, LOAD = STEP_ORDER
T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
ROOT = "/data/tasks"
POLICY = Policy(output_root=ROOT)


def params(**overrides: object) -> TaskParameters:
    base: dict[str, object] = {
        "db_connection": "postgresql://user:***@db/sales",
        "business_context": "sales orders",
        "table_list": ["orders"],
    }
    return TaskParameters(**{**base, **overrides})


# ---- in-memory ports ------------------------------------------------------------------------------


class MemoryStore:
    """The event store as a list; `open_task_ids` follows the SQL adapter's rule."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []

    async def open_task_ids(self) -> list[str]:
        open_ids: list[str] = []
        for task_id in dict.fromkeys(e.task_id for e in self.events):
            types = [e.type for e in self.events if e.task_id == task_id]
            if "task_deleted" in types:
                continue
            last_start = max(i for i, t in enumerate(types) if t in ("task_created", "task_rerun_requested"))
            finished = [i for i, t in enumerate(types) if t == "task_finished"]
            delete_requested = any(
                e.type == "task_cancel_requested" and e.payload.delete_after  # type: ignore[union-attr]
                for e in self.events
                if e.task_id == task_id
            )
            if not finished or last_start > max(finished) or delete_requested:
                open_ids.append(task_id)
        return open_ids

    async def task_events(self, task_id: str) -> list[EventEnvelope]:
        return [e for e in self.events if e.task_id == task_id]

    async def stored(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return {e.event_id for e in self.events} & set(event_ids)


@dataclass
class MemoryPublisher:
    """Publishing an event stores it at once (as if the collector had caught up)."""

    store: MemoryStore
    clock: Callable[[], datetime]
    events: list[EventEnvelope] = field(default_factory=list)
    commands: list[tuple[str, CommandEnvelope]] = field(default_factory=list)

    async def event(self, task_id: str, payload: BaseModel) -> EventEnvelope:
        envelope = EventEnvelope(
            task_id=task_id, producer="scheduler", payload=payload, occurred_at=self.clock()
        )  # type: ignore[arg-type]
        self.events.append(envelope)
        self.store.events.append(envelope)
        return envelope

    async def command(self, routing_key: str, payload: BaseModel, task_id: str | None) -> CommandEnvelope:
        envelope = CommandEnvelope(task_id=task_id, producer="scheduler", payload=payload)  # type: ignore[arg-type]
        self.commands.append((routing_key, envelope))
        return envelope


@dataclass
class MemoryQueues:
    steps_queue: str = "test.steps"
    backlog: list[int] = field(default_factory=list)  # successive collector backlogs, then 0
    runners: int = 1

    def attached(self) -> bool:
        return True

    async def collector_backlog(self) -> int:
        return self.backlog.pop(0) if self.backlog else 0

    async def runners_connected(self) -> int:
        return self.runners


class Harness:
    """A scheduler plus its ports and a clock the test moves."""

    def __init__(self, policy: Policy = POLICY, store: MemoryStore | None = None) -> None:
        self.now = T0
        self.store = store or MemoryStore()
        self.publisher = MemoryPublisher(self.store, lambda: self.now)
        self.queues = MemoryQueues()
        self.scheduler = Scheduler(
            publisher=self.publisher,
            store=self.store,
            policy=policy,
            queues=self.queues,
            sync_timeout=1.0,
            clock=lambda: self.now,
        )

    def published(self) -> list[BaseModel]:
        return [e.payload for e in self.publisher.events]

    def types(self) -> list[str]:
        return [e.type for e in self.publisher.events]

    def run_steps(self) -> list[RunStep]:
        return [c.payload for _, c in self.publisher.commands]  # type: ignore[misc]

    async def command(self, payload: BaseModel, task_id: str | None) -> None:
        await self.scheduler.handle(
            CommandEnvelope(task_id=task_id, producer="gateway", payload=payload, issued_at=self.now)  # type: ignore[arg-type]
        )

    async def runner(self, task_id: str, payload: BaseModel) -> None:
        """A runner's event, stored by the collector and delivered to the scheduler."""
        envelope = EventEnvelope(task_id=task_id, producer="runner", payload=payload, occurred_at=self.now)  # type: ignore[arg-type]
        self.store.events.append(envelope)
        await self.scheduler.handle(envelope)

    async def tick(self) -> None:
        await self.command(Tick(), None)

    def state(self, task_id: str) -> TaskState:
        return self.scheduler.states[task_id]

    async def complete(self, task_id: str, *steps: object) -> None:
        """The runner runs each scheduled step to success."""
        for _ in steps:
            step_cmd = self.run_steps()[-1]
            await self.runner(
                task_id, StepStarted(step=step_cmd.step, execution_id=step_cmd.execution_id, runner_id="r1")
            )
            await self.runner(task_id, StepSucceeded(step=step_cmd.step, execution_id=step_cmd.execution_id))


TASK = "task_20240101_120000_aaaaaa"
OTHER = "task_20240101_120001_bbbbbb"
MANUAL = "manual_20240101_120000_cccccc"


# ---- commands, as pure decisions -------------------------------------------------------------------


def _created_state(task_id: str = TASK, **overrides: object) -> TaskState:
    (decision,) = decide(None, T0, POLICY, CreateTask(parameters=params(**overrides)), task_id=task_id)
    state = evolve(None, EventEnvelope(task_id=task_id, producer="t", payload=decision.event, occurred_at=T0))  # type: ignore[arg-type]
    assert state is not None
    return state


def _fold(state: TaskState, *payloads: BaseModel) -> TaskState:
    for payload in payloads:
        new = evolve(
            state, EventEnvelope(task_id=state.task_id, producer="t", payload=payload, occurred_at=T0)
        )  # type: ignore[arg-type]
        assert new is not None
        state = new
    return state


def test_plan_is_every_step_in_complete_mode_and_one_in_single_mode() -> None:
    assert plan("complete", QA) == list(STEP_ORDER)
    assert plan("single", SQL) == [SQL]
    assert plan("single", None) == [DDL]


def test_create_decides_the_task_with_its_plan_and_directory() -> None:
    command = CreateTask(parameters=params(execution_mode="single", single_step=3), created_by="manual")
    (decision,) = decide(None, T0, POLICY, command, task_id=TASK)
    assert decision.event == TaskCreated(
        parameters=command.parameters,
        created_by="manual",
        output_directory=f"{ROOT}/{TASK}",
        steps=[SQL],
        skipped={s: "single mode runs step 3 (sql_validation) only" for s in (DDL, QA, LOAD)},
    )
    # A redelivered create finds the task and decides nothing.
    assert decide(_created_state(), T0, POLICY, command, task_id=TASK) == []


def test_execute_is_refused_while_the_task_runs_and_for_manual_runs() -> None:
    rerun = ExecuteTask(execution_mode="single", step=QA, force=True)
    running = _fold(_created_state(), TaskStarted())
    (decision,) = decide(running, T0, POLICY, rerun)
    assert isinstance(decision.event, LogEmitted) and decision.event.level == "WARNING"
    assert decision.event.message == "execute ignored: the task is in_progress"

    finished = _fold(running, TaskFinished(status="failed"))
    assert [d.event for d in decide(finished, T0, POLICY, rerun)] == [
        TaskRerunRequested(
            steps=[QA],
            execution_mode="single",
            force=True,
            skipped={s: "single mode runs step 2 (qa_generation) only" for s in (DDL, SQL, LOAD)},
        )
    ]
    manual = _fold(_created_state(MANUAL), TaskStarted(), TaskFinished(status="completed"))
    (refused,) = decide(manual, T0, POLICY, rerun)
    assert refused.event.message == "execute ignored: manual runs are re-run with dpctl"  # type: ignore[attr-defined]


def test_cancel_and_delete_guards() -> None:
    state = _created_state()
    assert [d.event for d in decide(state, T0, POLICY, CancelTask(reason="r"))] == [
        TaskCancelRequested(reason="r")
    ]
    cancelling = _fold(state, TaskCancelRequested(reason="r"))
    assert decide(cancelling, T0, POLICY, CancelTask()) == []  # a second cancel is a no-op
    assert [d.event for d in decide(cancelling, T0, POLICY, DeleteTask())] == [
        TaskCancelRequested(reason="task deleted", delete_after=True)
    ]
    deleting = _fold(cancelling, TaskCancelRequested(reason="task deleted", delete_after=True))
    assert decide(deleting, T0, POLICY, DeleteTask()) == []
    finished = _fold(state, TaskStarted(), TaskFinished(status="completed"))
    assert decide(finished, T0, POLICY, CancelTask()) == []  # nothing left to cancel
    assert decide(None, T0, POLICY, CancelTask()) == decide(None, T0, POLICY, DeleteTask()) == []


def test_manual_tasks_belong_to_the_command_line() -> None:
    assert scheduler_owns(TASK) and not scheduler_owns(MANUAL)


# ---- the Scheduler service --------------------------------------------------------------------------


async def test_create_starts_the_task_and_hands_the_first_step_to_a_runner() -> None:
    h = Harness()
    await h.command(CreateTask(parameters=params()), TASK)
    assert h.types() == ["task_created", "task_started", "step_scheduled"]
    assert h.published()[0].output_directory == f"{ROOT}/{TASK}"  # type: ignore[attr-defined]
    ((key, sent),) = h.publisher.commands
    scheduled = h.published()[2]
    assert isinstance(scheduled, StepScheduled) and key == STEPS_KEY and sent.task_id == TASK
    assert sent.payload == RunStep(
        step=DDL,
        execution_id=scheduled.execution_id,
        attempt=1,
        parameters=params(),
        force=False,
        fresh_seconds=FRESH_ORDER_SECONDS,  # a new task, the default timeouts
    )
    # The redelivered command changes nothing.
    await h.command(CreateTask(parameters=params()), TASK)
    assert len(h.publisher.events) == 3 and len(h.publisher.commands) == 1


async def test_each_success_schedules_the_next_step_until_the_task_finishes() -> None:
    h = Harness()
    await h.command(CreateTask(parameters=params()), TASK)
    await h.complete(TASK, *STEP_ORDER)
    assert [c.step for c in h.run_steps()] == list(STEP_ORDER)
    finished = h.published()[-1]
    assert finished == TaskFinished(status="completed", result={s.value: "completed" for s in STEP_ORDER})
    # Its own events come back through the queue: applied once already, they are skipped.
    before = len(h.publisher.events)
    for envelope in list(h.publisher.events):
        await h.scheduler.handle(envelope)
    assert len(h.publisher.events) == before


async def test_admission_keeps_at_most_the_limit_of_tasks_in_progress() -> None:
    h = Harness()
    await h.command(CreateTask(parameters=params(execution_mode="single", single_step=1)), TASK)
    await h.command(CreateTask(parameters=params(execution_mode="single", single_step=1)), OTHER)
    assert h.state(OTHER).status == "pending"
    await h.complete(TASK, DDL)
    assert h.state(TASK).status == "completed"
    assert h.state(OTHER).status == "in_progress"
    assert h.run_steps()[-1].step == DDL and h.publisher.commands[-1][1].task_id == OTHER


async def test_execute_on_a_running_task_only_warns_and_on_a_finished_one_reruns() -> None:
    h = Harness()
    await h.command(CreateTask(parameters=params(execution_mode="single", single_step=1)), TASK)
    await h.command(ExecuteTask(execution_mode="complete"), TASK)
    warning = h.published()[-1]
    assert isinstance(warning, LogEmitted) and "execute ignored" in warning.message
    assert not any(isinstance(e, TaskRerunRequested) for e in h.published())

    await h.complete(TASK, DDL)
    await h.command(ExecuteTask(execution_mode="single", step=QA), TASK)
    assert h.types()[-3:] == ["task_rerun_requested", "task_started", "step_scheduled"]
    assert h.run_steps()[-1].step == QA


async def test_cancel_and_delete_a_running_task() -> None:
    h = Harness()
    await h.command(CreateTask(parameters=params()), TASK)
    await h.command(CancelTask(reason="stop"), TASK)
    await h.command(CancelTask(reason="again"), TASK)
    assert [e for e in h.published() if isinstance(e, TaskCancelRequested)] == [
        TaskCancelRequested(reason="stop")
    ]
    await h.command(DeleteTask(), TASK)
    # The runner confirms; the task finishes cancelled, then its deletion is carried out.
    step = h.run_steps()[-1]
    await h.runner(TASK, StepStarted(step=step.step, execution_id=step.execution_id, runner_id="r1"))
    h.now += POLICY.cancel_grace + timedelta(seconds=1)
    await h.tick()
    assert h.types()[-1] == "task_deleted"
    assert isinstance(h.published()[-2], TaskFinished) and h.published()[-2].status == "cancelled"  # type: ignore[attr-defined]
    assert TaskDeleted() in h.published()


async def _running(h: Harness) -> RunStep:
    await h.command(CreateTask(parameters=params()), TASK)
    step = h.run_steps()[-1]
    await h.runner(TASK, StepStarted(step=step.step, execution_id=step.execution_id, runner_id="r1"))
    return step


async def test_a_silent_step_is_failed_as_a_zombie_by_its_code_and_retried() -> None:
    h = Harness()
    step = await _running(h)
    h.now += POLICY.heartbeat_timeout + timedelta(seconds=1)
    await h.tick()
    failed, retry = h.published()[-2:]
    assert isinstance(failed, StepFailed) and failed.code == FailureCode.ZOMBIE
    assert failed.execution_id == step.execution_id
    assert isinstance(retry, StepRetryScheduled) and retry.next_attempt == 2


async def test_a_heartbeat_already_stored_but_not_yet_delivered_saves_the_step() -> None:
    h = Harness()
    step = await _running(h)
    h.now += POLICY.heartbeat_timeout + timedelta(seconds=1)
    # The collector stored a heartbeat the scheduler has not received yet.
    h.store.events.append(
        EventEnvelope(
            task_id=TASK,
            producer="runner",
            payload=StepHeartbeat(step=step.step, execution_id=step.execution_id, runner_id="r1"),
            occurred_at=h.now - timedelta(seconds=5),
        )
    )
    await h.tick()
    assert not any(isinstance(e, StepFailed) for e in h.published())
    assert h.state(TASK).step(step.step).status == "running"


def test_only_a_zombie_code_sends_the_scheduler_back_to_the_store() -> None:
    zombie = StepFailed(
        step=DDL, execution_id="e", error="no heartbeat", retryable=True, code=FailureCode.ZOMBIE
    )
    worded = StepFailed(step=DDL, execution_id="e", error="zombie step: no heartbeat", retryable=True)
    assert needs_fresh_events(Decision(zombie))
    assert not needs_fresh_events(Decision(worded))  # the wording alone means nothing


async def test_manual_runs_are_left_to_the_command_line() -> None:
    h = Harness()
    created = TaskCreated(parameters=params(), created_by="manual", output_directory="/x", steps=[DDL])
    await h.runner(MANUAL, created)
    await h.runner(MANUAL, TaskStarted())
    await h.tick()
    assert h.publisher.events == [] and MANUAL not in h.scheduler.states


async def test_a_new_replica_rebuilds_open_tasks_from_the_store_after_the_backlog() -> None:
    first = Harness()
    await first.command(CreateTask(parameters=params()), TASK)
    await first.command(CreateTask(parameters=params(execution_mode="single", single_step=1)), OTHER)
    await first.complete(TASK, *STEP_ORDER)  # finished: not reloaded
    first.store.events.append(
        EventEnvelope(
            task_id=MANUAL,
            producer="dpctl",
            payload=TaskCreated(parameters=params(), created_by="manual", output_directory="/x", steps=[DDL]),
        )
    )
    second = Harness(store=first.store)
    second.queues.backlog = [3, 1]
    await second.tick()
    assert second.queues.backlog == []  # it waited until the collector had caught up
    assert set(second.scheduler.states) == {OTHER}
    assert second.state(OTHER).status == "in_progress"
    assert second.scheduler.synced


async def test_a_rebuild_after_a_refused_publish_waits_for_the_decisions_the_collector_still_stores() -> None:
    """The queues' depth says nothing of what the collector holds unacked: rebuilding right after a refused
    confirm (a step order the steps queue refused, the partition took) from a store that lacks the decisions
    just made would make them again, a second task_created and step_scheduled."""
    h = Harness()
    await h.command(CreateTask(parameters=params()), TASK)
    decided = list(h.store.events)
    h.store.events.clear()  # published and taken by the collector's partition, not stored yet
    h.scheduler.synced = False
    rebuild = asyncio.ensure_future(h.tick())
    for _ in range(5):
        await asyncio.sleep(0)  # let the rebuild start and find the store behind
    assert not rebuild.done()
    h.store.events.extend(decided)  # the collector commits its batch
    await rebuild
    assert h.types() == ["task_created", "task_started", "step_scheduled"]  # nothing decided twice
    assert h.state(TASK).step(DDL).status == "scheduled" and h.scheduler.published == {}


async def test_a_rebuild_gives_up_on_decisions_the_broker_refused_everywhere_at_its_deadline() -> None:
    h = Harness()
    h.scheduler.sync_timeout = 0.2
    await h.command(CreateTask(parameters=params()), TASK)
    h.store.events.clear()  # refused by the partition too: never stored
    h.scheduler.synced = False
    await h.tick()
    assert TASK not in h.scheduler.states and h.scheduler.synced and h.scheduler.published == {}


async def test_a_replica_taking_over_long_after_it_last_published_does_not_wait_for_those_events() -> None:
    h = Harness()
    h.scheduler.sync_timeout = 30
    await h.command(CreateTask(parameters=params()), TASK)
    h.store.events.clear()  # lost with the connection: never stored
    h.scheduler.published_at -= 30  # ... 30 s ago, when this replica lost the active role
    h.scheduler.synced = False
    await asyncio.wait_for(h.tick(), 5)
    assert TASK not in h.scheduler.states and h.scheduler.synced


async def test_a_waiting_step_without_any_runner_is_reported_once() -> None:
    h = Harness()
    h.queues.runners = 0
    await h.command(CreateTask(parameters=params()), TASK)
    h.now += timedelta(seconds=h.scheduler.tick_interval * 5 + 1)
    await h.tick()
    await h.tick()
    warnings = [e for e in h.published() if isinstance(e, LogEmitted)]
    assert [w.message for w in warnings] == [
        "ddl_generation is waiting: no step runner is connected to test.steps"
    ]


async def test_a_stale_tick_from_a_backlog_is_ignored() -> None:
    h = Harness()
    step = await _running(h)
    issued = h.now
    h.now += POLICY.heartbeat_timeout + timedelta(seconds=1)
    await h.scheduler.handle(
        CommandEnvelope(task_id=None, producer="scheduler", payload=Tick(), issued_at=issued)
    )
    assert h.state(TASK).step(step.step).status == "running"


@pytest.mark.parametrize("kind", ["execute", "cancel", "delete"])
async def test_commands_for_an_unknown_task_do_nothing(kind: str) -> None:
    h = Harness()
    payload = {
        "execute": ExecuteTask(execution_mode="complete"),
        "cancel": CancelTask(),
        "delete": DeleteTask(),
    }
    await h.command(payload[kind], TASK)
    assert h.publisher.events == [] and h.publisher.commands == []


def test_steps_waiting_for_a_runner_are_the_scheduled_ones_past_the_wait() -> None:
    state = _fold(_created_state(), TaskStarted())
    (scheduled,) = [d.event for d in decide(state, T0, POLICY)]
    assert isinstance(scheduled, StepScheduled)
    state = _fold(state, scheduled)  # scheduled at T0
    wait = timedelta(seconds=10)
    assert waiting_for_a_runner([state], T0 + wait, wait) == []
    assert waiting_for_a_runner([state], T0 + wait * 2, wait) == [(TASK, scheduled.execution_id, DDL)]
    started = _fold(state, StepStarted(step=DDL, execution_id=scheduled.execution_id, runner_id="r"))
    assert waiting_for_a_runner([started], T0 + wait * 2, wait) == []
