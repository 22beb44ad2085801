"""The scheduler's message handlers: commands from the gateway, every task event, and its own ticks.

State lives in memory as a fold over events (domain.evolve). The scheduler applies its own decisions
immediately and skips them when they come back through its queue (dedupe by event_id). Its state is
rebuilt from the event store the first time a replica receives a message: with a single-active-
consumer queue, that is the moment a standby replica takes over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractChannel
from pydantic import BaseModel

from services.scheduler.adapters.event_store import EventStore
from services.scheduler.domain import Decision, Policy, TaskState, admit, decide, evolve, start
from services.scheduler.metrics import SchedulerMetrics
from shared.broker import STEPS_KEY, Publisher, Topology, queue_consumers, queue_depth
from shared.commands import CancelTask, CreateTask, DeleteTask, ExecuteTask, RunStep
from shared.events import (
    LogEmitted,
    LogLevel,
    StepFailed,
    StepScheduled,
    TaskCancelRequested,
    TaskCreated,
    TaskDeleted,
    TaskFinished,
    TaskRerunRequested,
)
from shared.logging import get_logger
from shared.messages import CommandEnvelope, EventEnvelope, utcnow
from shared.steps import STEP_ORDER, StepName, step_by_number

log = get_logger()
_MAX_DECISIONS_PER_TASK = 64
_EVICT_TERMINAL_AFTER = timedelta(minutes=10)


@dataclass
class Scheduler:
    publisher: Publisher
    store: EventStore
    policy: Policy
    data_root_display: str
    channel: AbstractChannel
    topology: Topology
    sync_timeout: float = 10.0
    tick_interval: float = 2.0
    clock: Callable[[], datetime] = utcnow
    states: dict[str, TaskState] = field(default_factory=dict)
    seen: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    finished_at: dict[str, datetime] = field(default_factory=dict)
    synced: bool = False
    warned: set[tuple[str, str | None]] = field(default_factory=set)
    metrics: SchedulerMetrics = field(default_factory=SchedulerMetrics.build)

    # ---- state -----------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Rebuild every unfinished task from the event store, after the collector has caught up."""
        deadline = asyncio.get_running_loop().time() + self.sync_timeout
        while asyncio.get_running_loop().time() < deadline:
            if await queue_depth(self.channel, self.topology.collector_queue) == 0:
                break
            await asyncio.sleep(0.1)
        self.states.clear()
        self.seen.clear()
        for task_id in await self.store.open_task_ids():
            if _owned(task_id):
                await self._load(task_id)
        self.synced = True
        self.metrics.rebuilds.inc()
        log.info("scheduler state rebuilt from the event store", open_tasks=len(self.states))

    async def _load(self, task_id: str) -> TaskState | None:
        """Fold the store's events for a task that this replica has not applied yet."""
        state = self.states.get(task_id)
        seen = self.seen.setdefault(task_id, set())
        for envelope in await self.store.task_events(task_id):
            if envelope.event_id not in seen:
                seen.add(envelope.event_id)
                state = evolve(state, envelope)
        if state is not None:
            self.states[task_id] = state
        return state

    async def _state(self, task_id: str) -> TaskState | None:
        return self.states.get(task_id) or await self._load(task_id)

    def _apply(self, envelope: EventEnvelope) -> bool:
        seen = self.seen.setdefault(envelope.task_id, set())
        if envelope.event_id in seen:
            return False
        seen.add(envelope.event_id)
        new = evolve(self.states.get(envelope.task_id), envelope)
        if new is not None:
            self.states[envelope.task_id] = new
        return True

    async def emit(self, task_id: str, payload: BaseModel) -> EventEnvelope:
        envelope = await self.publisher.event(task_id, payload)
        self.metrics.decisions.labels(envelope.type).inc()
        self._apply(envelope)
        return envelope

    async def _log(self, task_id: str, level: LogLevel, message: str) -> None:
        await self.emit(task_id, LogEmitted(level=level, message=message, module="scheduler"))

    # ---- decisions -------------------------------------------------------------------------------

    async def reconcile(self, task_id: str) -> None:
        for _ in range(_MAX_DECISIONS_PER_TASK):
            state = self.states.get(task_id)
            if state is None:
                return
            if not _owned(task_id) and not (state.terminal and state.delete_requested):
                return
            decisions = decide(state, self.clock(), self.policy)
            if not decisions:
                return
            decision = decisions[0]
            if _is_zombie_verdict(decision):
                # Before failing a step for silence, make sure its heartbeats are not just late in the store.
                await self._load(task_id)
                state = self.states[task_id]
                if decide(state, self.clock(), self.policy)[:1] != decisions[:1]:
                    continue
            await self._carry_out(state, decision)
        log.error("decision loop did not settle", task_id=task_id)

    async def _carry_out(self, state: TaskState, decision: Decision) -> None:
        event = decision.event
        await self.emit(state.task_id, event)
        if isinstance(event, StepScheduled):
            await self.publisher.command(
                STEPS_KEY,
                RunStep(
                    step=event.step,
                    execution_id=event.execution_id,
                    attempt=event.attempt,
                    parameters=state.parameters,
                    force=event.force,
                ),
                state.task_id,
            )
        if isinstance(event, TaskFinished | TaskDeleted):
            self.finished_at[state.task_id] = self.clock()

    async def admit_waiting(self) -> None:
        for task_id in admit(self.states.values(), self.policy.max_concurrent_tasks):
            await self.emit(task_id, start().event)
            await self.reconcile(task_id)

    async def settle(self, task_id: str | None) -> None:
        if task_id is not None:
            await self.reconcile(task_id)
        await self.admit_waiting()

    # ---- handlers --------------------------------------------------------------------------------

    async def handle(self, envelope: EventEnvelope | CommandEnvelope) -> None:
        if not self.synced:
            await self.sync()
        if isinstance(envelope, EventEnvelope):
            if not _owned(envelope.task_id):
                return  # a manual (command-line) run drives itself
            if self._apply(envelope):
                await self.settle(envelope.task_id)
            return
        handler = HANDLERS.get(envelope.type)
        if handler is None:
            log.warning("command not for the scheduler ignored", type=envelope.type)
            return
        await handler(self, envelope)

    async def on_create(self, command: CommandEnvelope) -> None:
        payload = command.payload
        assert isinstance(payload, CreateTask)
        task_id = command.task_id
        if task_id is None or await self._state(task_id) is not None:
            return  # a redelivered create: the task exists already
        params = payload.parameters
        steps = (
            list(STEP_ORDER)
            if params.execution_mode == "complete"
            else [step_by_number(params.single_step or 1)]
        )
        await self.emit(
            task_id,
            TaskCreated(
                task_type=payload.task_type,
                parameters=params,
                created_by=payload.created_by,
                output_directory=f"{self.data_root_display}/{task_id}",
                steps=steps,
            ),
        )
        await self.settle(task_id)

    async def on_execute(self, command: CommandEnvelope) -> None:
        payload = command.payload
        assert isinstance(payload, ExecuteTask)
        state = await self._state(command.task_id or "")
        if state is None or state.deleted:
            return
        if not state.terminal:
            await self._log(state.task_id, "WARNING", f"execute ignored: the task is {state.status}")
            return
        if not _owned(state.task_id):
            await self._log(state.task_id, "WARNING", "execute ignored: manual runs are re-run with dpctl")
            return
        steps: list[StepName] = (
            list(STEP_ORDER) if payload.execution_mode == "complete" else [payload.step or STEP_ORDER[0]]
        )
        await self.emit(
            state.task_id,
            TaskRerunRequested(steps=steps, execution_mode=payload.execution_mode, force=payload.force),
        )
        await self.settle(state.task_id)

    async def on_cancel(self, command: CommandEnvelope) -> None:
        payload = command.payload
        assert isinstance(payload, CancelTask)
        state = await self._state(command.task_id or "")
        if state is None or state.deleted or state.terminal or state.cancel_requested_at is not None:
            return
        await self.emit(state.task_id, TaskCancelRequested(reason=payload.reason))
        await self.settle(state.task_id)

    async def on_delete(self, command: CommandEnvelope) -> None:
        assert isinstance(command.payload, DeleteTask)
        state = await self._state(command.task_id or "")
        if state is None or state.deleted or state.delete_requested:
            return
        await self.emit(state.task_id, TaskCancelRequested(reason="task deleted", delete_after=True))
        await self.settle(state.task_id)

    async def on_tick(self, command: CommandEnvelope) -> None:
        if self.clock() - command.issued_at > timedelta(seconds=max(self.tick_interval * 3, 30)):
            return  # a stale tick from a queue backlog; a fresh one follows
        for task_id in [t for t, s in self.states.items() if not s.terminal or s.delete_requested]:
            await self.reconcile(task_id)
        await self.admit_waiting()
        await self._warn_if_no_runner()
        self._evict()
        self.metrics.ticks.inc()
        self.metrics.count_tasks(self.states.values())

    async def _warn_if_no_runner(self) -> None:
        """Tell the user, once per waiting step, when no step runner is connected at all."""
        now = self.clock()
        waiting = [
            (state, step, run.execution_id)
            for state in self.states.values()
            for step, run in state.steps.items()
            if run.status == "scheduled"
            and run.scheduled_at is not None
            and now - run.scheduled_at > timedelta(seconds=self.tick_interval * 5)
            and (state.task_id, run.execution_id) not in self.warned
        ]
        if not waiting or await queue_consumers(self.channel, self.topology.steps_queue) > 0:
            return
        for state, step, execution in waiting:
            self.warned.add((state.task_id, execution))
            await self._log(
                state.task_id,
                "WARNING",
                f"{step.value} is waiting: no step runner is connected to {self.topology.steps_queue}",
            )

    def _evict(self) -> None:
        now = self.clock()
        for task_id, at in list(self.finished_at.items()):
            state = self.states.get(task_id)
            if state is None or ((state.terminal or state.deleted) and now - at > _EVICT_TERMINAL_AFTER):
                self.states.pop(task_id, None)
                self.seen.pop(task_id, None)
                self.warned = {w for w in self.warned if w[0] != task_id}
                self.finished_at.pop(task_id, None)


def _owned(task_id: str) -> bool:
    """Tasks the scheduler drives; `manual_...` runs are driven by the command line that started them."""
    return not task_id.startswith("manual_")


def _is_zombie_verdict(decision: Decision) -> bool:
    event: Any = decision.event
    return isinstance(event, StepFailed) and event.retryable and "zombie" in event.error


HANDLERS: dict[str, Callable[[Scheduler, CommandEnvelope], Awaitable[None]]] = {
    "create_task": Scheduler.on_create,
    "execute_task": Scheduler.on_execute,
    "cancel_task": Scheduler.on_cancel,
    "delete_task": Scheduler.on_delete,
    "tick": Scheduler.on_tick,
}
