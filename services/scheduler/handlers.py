"""The scheduler's message handlers: commands from the gateway, every task event, and its own ticks.

State lives in memory as a fold over events (domain.evolve). The scheduler applies its own decisions
immediately; its queue brings only the step runners' outcomes and heartbeats
(shared.topology.SCHEDULER_EVENT_TYPES), deduplicated by event_id (redeliveries, the store). Its state is
rebuilt from the event store the first time a replica receives a message: with a single-active-
consumer queue, that is the moment a standby replica takes over.

Every rule lives in `domain`: the handlers load state, call `decide`, and publish what it returns.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from services.scheduler.domain import (
    Decision,
    TaskCommand,
    admit,
    decide,
    fresh_window,
    in_admission,
    needs_fresh_events,
    retention,
    scheduler_drives,
    scheduler_owns,
    start,
    waiting_for_a_runner,
)
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.ports import EventSource, MessagePublisher, QueueProbe
from services.scheduler.state import Policy, TaskState, evolve, llm_tokens_used
from shared.broker import STEPS_KEY
from shared.commands import RunStep
from shared.events import LogEmitted, StepScheduled, TaskDeleted, TaskFinished
from shared.logging import get_logger
from shared.messages import CommandEnvelope, EventEnvelope, utcnow

log = get_logger()
_MAX_DECISIONS_PER_TASK = 64
_EVICT_TERMINAL_AFTER = timedelta(minutes=10)


@dataclass
class Scheduler:
    publisher: MessagePublisher
    store: EventSource
    policy: Policy
    queues: QueueProbe
    sync_timeout: float = 10.0
    tick_interval: float = 2.0
    clock: Callable[[], datetime] = utcnow
    states: dict[str, TaskState] = field(default_factory=dict)
    seen: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    published: dict[str, uuid.UUID] = field(default_factory=dict)  # each task's last event published here
    published_at: float = float("-inf")  # loop time of the last of them
    finished_at: dict[str, datetime] = field(default_factory=dict)
    admissible: set[str] = field(default_factory=set)  # ids of the states `admit` considers
    in_progress: set[str] = field(default_factory=set)  # those of them running
    synced: bool = False
    warned: set[tuple[str, str | None]] = field(default_factory=set)
    retention_interval: float = 3600.0
    retention_batch: int = 100
    retention_due: datetime | None = None  # None: at the first tick after a start or take-over
    metrics: SchedulerMetrics = field(default_factory=SchedulerMetrics.build)

    # ---- state -----------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Rebuild every unfinished task from the event store, after the collector has caught up."""
        deadline = asyncio.get_running_loop().time() + self.sync_timeout
        while asyncio.get_running_loop().time() < deadline:
            if await self.queues.collector_backlog() == 0:
                break
            await asyncio.sleep(0.1)
        await self._await_own_events(deadline)
        self.states.clear()
        self.admissible.clear()
        self.in_progress.clear()
        self.seen.clear()
        for task_id in await self.store.open_task_ids():
            if scheduler_owns(task_id):
                await self._load(task_id)
        self.synced = True
        self.metrics.rebuilds.inc()
        log.info("scheduler state rebuilt from the event store", open_tasks=len(self.states))

    async def _await_own_events(self, deadline: float) -> None:
        """Wait until the store holds the last event this replica published for each task, or the deadline.

        A queue's depth counts neither what the collector holds unacked nor, on a quorum queue, what
        arrived in the last moment: rebuilding right after a refused publish (say a step order the steps
        queue refused while the partition took it) would miss the decisions just made and make them again.
        An event the broker refused everywhere never arrives; the deadline ends the wait for it, and so does
        `sync_timeout` after the last publish (a replica taking over long after it last published waits
        for nothing: what reached the broker is stored by then).
        """
        deadline = min(deadline, self.published_at + self.sync_timeout)
        waiting = list(self.published.values())
        while waiting and asyncio.get_running_loop().time() < deadline:
            stored = await self.store.stored(waiting)
            waiting = [e for e in waiting if e not in stored]
            if waiting:
                await asyncio.sleep(0.05)  # the collector stores in batches of a few milliseconds
        if waiting:
            log.warning("rebuilding without events the store does not hold", events=len(waiting))
        self.published.clear()

    async def _load(self, task_id: str) -> TaskState | None:
        """Fold the store's events for a task that this replica has not applied yet."""
        state = self.states.get(task_id)
        seen = self.seen.setdefault(task_id, set())
        for envelope in await self.store.task_events(task_id):
            if envelope.event_id not in seen:
                seen.add(envelope.event_id)
                state = evolve(state, envelope)
        if state is not None:
            self._put(task_id, state)
        return state

    def _put(self, task_id: str, state: TaskState) -> None:
        self.states[task_id] = state
        admissible = in_admission(state)
        for ids, member in (
            (self.admissible, admissible),
            (self.in_progress, admissible and state.status == "in_progress"),
        ):
            if member:
                ids.add(task_id)
            else:
                ids.discard(task_id)

    async def _state(self, task_id: str) -> TaskState | None:
        return self.states.get(task_id) or await self._load(task_id)

    def _apply(self, envelope: EventEnvelope) -> bool:
        seen = self.seen.setdefault(envelope.task_id, set())
        if envelope.event_id in seen:
            return False
        seen.add(envelope.event_id)
        new = evolve(self.states.get(envelope.task_id), envelope)
        if new is not None:
            self._put(envelope.task_id, new)
        return True

    async def emit(self, task_id: str, payload: BaseModel) -> EventEnvelope:
        envelope = await self.publisher.event(task_id, payload)
        self.published[task_id] = envelope.event_id
        self.published_at = asyncio.get_running_loop().time()
        self.metrics.decisions.labels(envelope.type).inc()
        self._apply(envelope)
        return envelope

    async def _warn(self, task_id: str, message: str) -> None:
        await self.emit(
            task_id, LogEmitted(level="WARNING", message=message, module="scheduler", function="_warn")
        )

    # ---- decisions -------------------------------------------------------------------------------

    async def reconcile(self, task_id: str) -> None:
        for _ in range(_MAX_DECISIONS_PER_TASK):
            state = self.states.get(task_id)
            if state is None:
                return
            if not scheduler_drives(state):
                return
            decisions = decide(state, self.clock(), self.policy)
            if not decisions:
                return
            decision = decisions[0]
            if needs_fresh_events(decision):
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
                    llm_tokens_used=llm_tokens_used(state),
                    fresh_seconds=fresh_window(state, self.clock(), self.policy),
                ),
                state.task_id,
            )
        if isinstance(event, TaskFinished | TaskDeleted):
            self.finished_at[state.task_id] = self.clock()

    async def admit_waiting(self) -> None:
        if len(self.in_progress) >= self.policy.max_concurrent_tasks:
            return  # the usual case under load: no slot, nothing to sort
        candidates = [self.states[t] for t in self.admissible]
        for task_id in admit(candidates, self.policy.max_concurrent_tasks):
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
            if not scheduler_owns(envelope.task_id):
                return  # a manual (command-line) run drives itself
            if self._apply(envelope):
                await self.settle(envelope.task_id)
            return
        handler = HANDLERS.get(envelope.type)
        if handler is None:
            log.warning("command not for the scheduler ignored", type=envelope.type)
            return
        await handler(self, envelope)

    async def on_command(self, command: CommandEnvelope) -> None:
        """create_task, execute_task, cancel_task, delete_task, complete/abandon_review: the domain checks
        the guards."""
        payload: TaskCommand = command.payload  # type: ignore[assignment]  # HANDLERS routes only these
        task_id = command.task_id
        if task_id is None:
            return
        state = await self._state(task_id)
        decisions = decide(state, self.clock(), self.policy, payload, task_id=task_id)
        for decision in decisions:
            await self.emit(task_id, decision.event)
        if any(not isinstance(d.event, LogEmitted) for d in decisions):
            await self.settle(task_id)

    async def on_tick(self, command: CommandEnvelope) -> None:
        if self.clock() - command.issued_at > timedelta(seconds=max(self.tick_interval * 3, 30)):
            return  # a stale tick from a queue backlog; a fresh one follows
        for task_id in [t for t, s in self.states.items() if not s.terminal or s.delete_requested]:
            await self.reconcile(task_id)
        await self.admit_waiting()
        await self._warn_if_no_runner()
        await self._apply_retention()
        self._evict()
        self.metrics.ticks.inc()
        self.metrics.count_tasks(self.states.values())

    async def _warn_if_no_runner(self) -> None:
        """Tell the user, once per waiting step, when no step runner is connected at all."""
        after = timedelta(seconds=self.tick_interval * 5)
        waiting = [
            w
            for w in waiting_for_a_runner(self.states.values(), self.clock(), after)
            if w[:2] not in self.warned
        ]
        if not waiting or await self.queues.runners_connected() > 0:
            return
        for task_id, execution, step in waiting:
            self.warned.add((task_id, execution))
            await self._warn(
                task_id, f"{step.value} is waiting: no step runner is connected to {self.queues.steps_queue}"
            )

    async def _apply_retention(self) -> None:
        """Every `retention_interval`: purge the log text and clean the files of tasks finished long ago.

        The decisions are events like any other (the collector applies them to the read models, the
        store and the task directories), so a rebuild reproduces what retention removed.
        """
        periods = [p for p in (self.policy.log_retention, self.policy.file_retention) if p is not None]
        now = self.clock()
        if not periods or (self.retention_due is not None and now < self.retention_due):
            return
        candidates = await self.store.finished_tasks(now - min(periods))
        # Due again only after a pass that could read the store: a failed one is retried with the tick.
        self.retention_due = now + timedelta(seconds=self.retention_interval)
        # Tasks this replica knows to be running again or being deleted: their finish in the store is old news.
        busy = [t for t, s in self.states.items() if not s.terminal or s.delete_requested or s.deleted]
        decisions = retention(candidates, now, self.policy, busy=busy, limit=self.retention_batch)
        for task_id, decision in decisions:
            await self.emit(task_id, decision.event)
            self.finished_at.setdefault(task_id, now)  # so _evict forgets the event ids it saw
        if decisions:
            log.info("retention applied", decisions=len(decisions), candidates=len(candidates))

    def _evict(self) -> None:
        now = self.clock()
        for task_id, at in list(self.finished_at.items()):
            state = self.states.get(task_id)
            if state is None or ((state.terminal or state.deleted) and now - at > _EVICT_TERMINAL_AFTER):
                self.states.pop(task_id, None)
                self.admissible.discard(task_id)
                self.in_progress.discard(task_id)
                self.seen.pop(task_id, None)
                self.published.pop(task_id, None)
                self.warned = {w for w in self.warned if w[0] != task_id}
                self.finished_at.pop(task_id, None)


HANDLERS: dict[str, Callable[[Scheduler, CommandEnvelope], Awaitable[None]]] = {
    "create_task": Scheduler.on_command,
    "execute_task": Scheduler.on_command,
    "cancel_task": Scheduler.on_command,
    "delete_task": Scheduler.on_command,
    "complete_review": Scheduler.on_command,
    "abandon_review": Scheduler.on_command,
    "tick": Scheduler.on_tick,
}
