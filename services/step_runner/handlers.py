"""The runner's message handlers: run_step commands from its work queue (each in its step order, the
message of the step_scheduled it carries out), cancel/delete from events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from aio_pika.abc import AbstractChannel
from pydantic import BaseModel

from services.step_runner.adapters.task_records import TaskRecords
from services.step_runner.context import Emit, RunnerContext
from services.step_runner.execution import StepInterrupted, execute_step
from services.step_runner.executors.base import StepRegistry
from services.step_runner.freshness import StoppedTasks, needs_store_check
from services.step_runner.held_start import START_HOLD_SECONDS, HeldStart
from services.step_runner.metrics import RunnerMetrics
from shared.broker import PermanentError, Publisher
from shared.commands import RunStep
from shared.connection_url import HostPolicy
from shared.events import StepCancelled, StepFailed
from shared.ids import is_valid_task_id
from shared.llm_usage import Prices, UsageMeter
from shared.logging import get_logger
from shared.messages import CommandEnvelope, EventEnvelope, utcnow
from shared.secrets import SecretBox

log = get_logger()


@dataclass
class StepRunner:
    registry: StepRegistry
    publisher: Publisher
    records: TaskRecords
    secrets: SecretBox
    connections: dict[str, str]
    data_root: Path
    runner_id: str
    heartbeat_interval: float
    channel: AbstractChannel | None = None
    running: dict[str, asyncio.Task[BaseModel]] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)
    stopped: StoppedTasks = field(default_factory=StoppedTasks)
    listening_since: float | None = None  # time.monotonic() when the control queue was consumed
    metrics: RunnerMetrics = field(default_factory=RunnerMetrics.build)
    db_policy: HostPolicy = field(default_factory=HostPolicy)
    prices: Prices = field(default_factory=Prices)

    async def on_run_step(self, envelope: EventEnvelope | CommandEnvelope) -> None:
        if not isinstance(envelope, CommandEnvelope) or not isinstance(envelope.payload, RunStep):
            raise PermanentError(f"the step queue only takes run_step commands, got {envelope.type}")
        command = envelope.payload
        task_id = envelope.task_id or ""
        if not is_valid_task_id(task_id):
            raise PermanentError(f"invalid task id {task_id!r}")
        bound = log.bind(task_id=task_id, step=command.step.value, execution_id=command.execution_id)
        earlier = self.running.get(task_id)
        if earlier is not None and not earlier.done():
            # The task's earlier try, stopped when its delivery was taken back, may still be unwinding
            # (a thread it waits for): the two never work in the task directory at once.
            await asyncio.wait([earlier])
        listened_for = None if self.listening_since is None else time.monotonic() - self.listening_since
        reason = (
            await self.records.obsolete_reason(task_id, command.execution_id)
            if needs_store_check(
                command.fresh_seconds, envelope.issued_at, utcnow(), listened_for, task_id in self.stopped
            )
            else None
        )
        if reason:
            bound.info("step command skipped", reason=reason)
            self.metrics.skipped.labels(command.step.value).inc()
            return

        held = HeldStart(self.publisher, task_id, START_HOLD_SECONDS)
        emit = held.emit
        executor = self.registry.get(command.step)
        if executor is None:
            await emit(
                StepFailed(
                    step=command.step,
                    execution_id=command.execution_id,
                    error=f"this runner has no executor for {command.step.value}",
                    runner_id=self.runner_id,
                )
            )
            self.metrics.finished.labels(command.step.value, "failed").inc()
            return
        ctx = RunnerContext(
            emit=emit,
            task_id=task_id,
            step=command.step,
            execution_id=command.execution_id,
            attempt=command.attempt,
            task_dir=self.data_root / task_id,
            parameters=command.parameters,
            secrets=self.secrets,
            connections=self.connections,
            business_db_policy=self.db_policy,
        )
        self.cancel_requested.discard(task_id)
        work = asyncio.create_task(
            execute_step(
                executor,
                ctx,
                emit,
                runner_id=self.runner_id,
                heartbeat_interval=self.heartbeat_interval,
                cancelled=lambda: task_id in self.cancel_requested,
                meter=UsageMeter(command.parameters.max_llm_tokens, command.llm_tokens_used, self.prices),
            )
        )
        self.running[task_id] = work
        bound.info("step started", attempt=command.attempt)
        self.metrics.started.labels(command.step.value).inc()
        self.metrics.running.inc()
        began, outcome = time.perf_counter(), "error"
        try:
            terminal = await self._outcome(work, task_id, command, emit)
            outcome = terminal.type.removeprefix("step_")  # type: ignore[attr-defined]
            self.metrics.count_llm_usage(getattr(terminal, "llm_usage", []))
            self.metrics.duration.labels(command.step.value).observe(time.perf_counter() - began)
        except (StepInterrupted, asyncio.CancelledError):
            outcome = "interrupted"
            raise
        finally:
            await held.close()
            if self.running.get(task_id) is work:
                del self.running[task_id]
            self.metrics.running.dec()
            self.metrics.finished.labels(command.step.value, outcome).inc()
        bound.info("step ended", outcome=terminal.type)  # type: ignore[attr-defined]

    async def _outcome(
        self, work: asyncio.Task[BaseModel], task_id: str, command: RunStep, emit: Emit
    ) -> BaseModel:
        """The step's terminal event. The handler is cancelled when the channel its delivery came on
        closes (aio-pika cancels a closed channel's consumer tasks; the broker requeues the RunStep): the
        try stops too, without a terminal event, and the redelivery runs the step, here or on another
        runner, never beside it. A shutdown lets running steps finish first (`shutdown`), before the
        connection closes.

        A user's cancel that lands before the try's first line ran (the control queue's message handled
        in the same turn of the loop as the order) cancels a coroutine that never started, so it cannot
        answer: the cancel is answered here, and the order settled like any other end of a step."""
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                log.warning("step handler cancelled (its delivery's channel closed); the try stops")
                work.cancel()
                await asyncio.wait([work])
                raise
            if not (work.cancelled() and task_id in self.cancel_requested):
                raise
        terminal = StepCancelled(
            step=command.step, execution_id=command.execution_id, reason="cancelled by user before it began"
        )
        await emit(terminal)
        return terminal

    def listening(self, *_: object) -> None:
        """The control queue is consumed (again): an order's freshness may count from now on."""
        self.listening_since = time.monotonic()

    def deaf(self, *_: object) -> None:
        """The control queue is exclusive, so it goes with its connection: a cancel or delete sent until it
        is back never reaches this runner, and every order asks the store meanwhile."""
        self.listening_since = None

    async def on_control(self, envelope: EventEnvelope | CommandEnvelope) -> None:
        """task_cancel_requested / task_deleted: stop this task's step if it runs here."""
        if not isinstance(envelope, EventEnvelope):
            return
        self.stopped.add(envelope.task_id)
        work = self.running.get(envelope.task_id)
        if work is not None and not work.done():
            log.info("cancelling step", task_id=envelope.task_id, reason=envelope.type)
            self.cancel_requested.add(envelope.task_id)
            work.cancel()

    async def shutdown(self, grace: float) -> None:
        """Wait for running steps up to `grace` seconds; the rest are interrupted and redelivered."""
        pending = [t for t in self.running.values() if not t.done()]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=5)
